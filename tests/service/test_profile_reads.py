"""The profile reads a few rows per part; what it shows equals what the whole history says."""

from __future__ import annotations

import pandas as pd

from features import columns as c
from features.cart import open_cart
from service.loyalty import loyalty_of, window_start
from service.people import find_person, person_events, recent_events
from service.preferences import channels_since, preferences
from service.profiles import RECENT, SHOWN_TYPES
from service.shelf import Shelf
from service.storage import activity, carts, churn_days
from service.storage.codec import micros
from service.storage.engine import open_engine
from tests.conftest import ServedStore


def test_bounded_reads_equal_the_history(served_store: ServedStore) -> None:
    engine = open_engine(served_store.settings.database_url)
    now = served_store.clock
    checked_carts = checked_recent = left_out = two_customer_ids = 0
    with engine.connect() as conn:
        for i in range(100, 160):
            person = find_person(conn, customer_id=f"C{i:07d}")
            assert person is not None
            history = person_events(conn, person)
            shown = history[history[c.TYPE].isin(SHOWN_TYPES)].tail(RECENT).iloc[::-1]
            latest = recent_events(conn, person, SHOWN_TYPES, RECENT)
            assert [e[c.EVENT_ID] for e in latest] == shown[c.EVENT_ID].tolist()
            two_customer_ids += len(person.customer_ids) > 1  # each id read on its own
            ids = (person.customer_ids, person.anonymous_ids)
            assert activity.channels(conn, *ids) == sorted(history[c.CHANNEL].unique())
            expected = open_cart(history, as_of=pd.Timestamp(now) + pd.Timedelta(microseconds=1))
            lines = carts.open_lines(conn, *ids, until=micros(now))
            assert [(x.item_id, x.quantity) for x in lines] == list(
                zip(expected[c.ITEM_ID], expected[c.QUANTITY], strict=True)
            )
            checked_carts += len(lines)
            # The profile's cart: the lines added to in the last days, read alone.
            since = pd.Timestamp(now) - pd.Timedelta(days=8)
            fresh = expected[expected["added_at"] >= since]
            recent = carts.open_lines(conn, *ids, until=micros(now), since=micros(since))
            assert [(x.item_id, x.quantity) for x in recent] == list(
                zip(fresh[c.ITEM_ID], fresh[c.QUANTITY], strict=True)
            )
            checked_recent += len(recent)
            left_out += len(lines) - len(recent)
    engine.dispose()
    assert checked_carts > 0 and checked_recent > 0 and left_out > 0 and two_customer_ids > 0


def test_one_read_of_purchase_days_gives_the_loyalty_and_channels_of_two(
    served_store: ServedStore,
) -> None:
    """The profile reads a person's purchase totals once for loyalty and the channel
    shares: both equal what their own reads give, for a loyalty window shorter than the
    year; totals read for another window are not taken for this one."""
    engine = open_engine(served_store.settings.database_url)
    now = served_store.clock
    settings = served_store.settings.model_copy(update={"loyalty_window_days": 60})
    shelf = Shelf(engine, 30)
    windowed = channel_mixes = 0
    with engine.connect() as conn:
        for i in range(100, 160):
            person = find_person(conn, customer_id=f"C{i:07d}")
            assert person is not None
            ids = (person.customer_ids, person.anonymous_ids)
            bought = churn_days.purchase_totals(
                conn, *ids, days_from=channels_since(now), spend_after=window_start(now, settings)
            )
            alone = loyalty_of(conn, person, now, settings)
            assert loyalty_of(conn, person, now, settings, bought=bought) == alone
            shared = preferences(conn, shelf, person, now, bought)
            assert shared == preferences(conn, shelf, person, now)
            year = churn_days.purchase_totals(
                conn, *ids, days_from=channels_since(now), spend_after=channels_since(now) - 1
            )
            windowed += year.spend > bought.spend
            channel_mixes += len(shared.channels) > 1
            if year.spend > bought.spend:  # another window's totals: read again, not taken
                assert loyalty_of(conn, person, now, settings, bought=year) == alone
    engine.dispose()
    assert windowed > 0 and channel_mixes > 0
