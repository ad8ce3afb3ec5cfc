"""The next-best-offer ledger on each database, with no model loaded: the decision is
made from the offer book alone, kept for every channel, and replaced once answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine

from features.schema import TABLES
from features.validation import validate
from service.decisioning.nbo import NoConsent, OfferAsk, next_best_offer, where_for
from service.intake import accept_events
from service.people import find_person
from service.serving import Served
from service.settings import Settings
from service.shelf import Shelf
from service.storage.writer import write_batch

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_decide_keep_and_replace_without_models(engine: Engine) -> None:
    offers = pd.DataFrame(
        {"offer_id": ["CLUB", "CC"], "name": ["Join the club", "Free click & collect"],
         "kind": ["service", "service"], "channels": ["", "web,email"],
         "valid_from": [NOW - timedelta(days=1)] * 2, "valid_until": [NOW + timedelta(days=30)] * 2,
         "value": [5.0, 3.0]}
    )  # fmt: skip
    people = pd.DataFrame(
        {"customer_id": ["C1"], "consent_email": [False], "consent_sms": [False],
         "consent_push": [False]}
    )  # fmt: skip
    with engine.begin() as conn:
        for name, frame in (("offers", offers), ("customers", people)):
            write_batch(conn, TABLES[name], validate(frame, TABLES[name]))
    view = {"event_id": "v1", "ts": (NOW - timedelta(days=2)).isoformat(), "customer_id": "C1",
            "channel": "web", "type": "view", "item_id": "I1"}  # fmt: skip
    accept_events(engine, [view])
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False))
    shelf, served = Shelf(engine, 60), Served()
    with engine.connect() as conn:
        person = find_person(conn, customer_id="C1")
    assert person is not None

    def ask(channel: str, at: datetime = NOW) -> object:
        where = where_for(shelf, channel, None)
        return next_best_offer(
            engine, served, shelf, settings, OfferAsk(person, "C1", where, None, at)
        )

    first = ask("web")
    assert first is not None and first.offer["offer_id"] == "CLUB"  # 5 x 5% beats 3 x 5%
    assert first.reused is False and abs(first.expected_value - 0.5 * 0.05 * 5) < 1e-9
    again = ask("app", NOW + timedelta(hours=1))
    assert again is not None and again.decision_id == first.decision_id and again.reused
    with pytest.raises(NoConsent, match="email"):
        ask("email")
    took = {"event_id": "t1", "ts": (NOW + timedelta(hours=2)).isoformat(), "customer_id": "C1",
            "channel": "store", "store_id": "S1", "type": "offer_accepted",
            "offer_id": "CLUB"}  # fmt: skip
    accept_events(engine, [took])
    after = ask("web", NOW + timedelta(hours=3))
    assert after is not None and after.decision_id != first.decision_id
    assert after.offer["offer_id"] == "CC"
    # A week on, the decision has expired and a new one is made.
    later = ask("web", NOW + timedelta(days=8))
    assert later is not None and later.decision_id != after.decision_id
