"""Offer eligibility and ranking on tiny frames whose right answer is known."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from features import columns as c
from service.decisioning.offers import Where, best, eligible, offers_now, rank_offers, still_open
from service.storage.codec import micros

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
START, END = micros(datetime(2026, 11, 1, tzinfo=UTC)), micros(datetime(2026, 12, 1, tzinfo=UTC))


def book(*rows: tuple[str, str, str | None, str | None, str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {c.OFFER_ID: o, c.NAME: o, c.KIND: k, c.ITEM_ID: i, c.CATEGORY: cat,
             c.CHANNELS: ch, c.VALID_FROM: START, c.VALID_UNTIL: END, c.VALUE: v,
             c.DESCRIPTION: None}
            for o, k, i, cat, ch, v in rows
        ]
    )  # fmt: skip


OFFERS = book(
    ("SHOES", "promotion", None, "shoes", "", 8.0),
    ("TOYS", "promotion", None, "toys", "", 8.0),
    ("BOOT", "product", "boot", None, "web,store", 30.0),
    ("WINBACK", "retention", None, None, "email,app", 20.0),
    ("CLUB", "service", None, None, "store", 5.0),
)
PERSONS = pd.DataFrame(
    {c.PERSON_ID: ["loyal", "leaving"], "churn": [0.1, 0.8], "band": ["low", "high"],
     "driver": [None, "no purchase for 90 days"]}
)  # fmt: skip
#: Both mostly suggested shoes; the boot is each one's first suggestion.
CANDIDATES = pd.DataFrame(
    {c.PERSON_ID: ["loyal"] * 3 + ["leaving"] * 3,
     c.ITEM_ID: ["boot", "sandal", "kite"] * 2,
     c.CATEGORY: ["shoes", "shoes", "toys"] * 2,
     "rank": [1, 2, 3] * 2, "reason": ["bought together with socks"] * 6,
     c.NAME: ["Boot", "Sandal", "Kite"] * 2}
)  # fmt: skip
NOTHING = pd.DataFrame(columns=[c.PERSON_ID, c.ITEM_ID, c.OFFER_ID])


def ranked(channel: str, **kw: object) -> pd.DataFrame:
    offers = offers_now(OFFERS, channel, NOW)
    where = Where(channel, **kw)  # type: ignore[arg-type]
    pairs = eligible(offers, PERSONS, where, bought=NOTHING, answered=NOTHING,
                     retention_bands=["high", "lapsed"])  # fmt: skip
    return rank_offers(pairs, PERSONS, CANDIDATES)


def test_the_channel_and_the_dates_choose_the_book() -> None:
    assert set(offers_now(OFFERS, "email", NOW)[c.OFFER_ID]) == {"SHOES", "TOYS", "WINBACK"}
    assert set(offers_now(OFFERS, "push", NOW)[c.OFFER_ID]) == {"SHOES", "TOYS", "WINBACK"}
    later = datetime(2026, 12, 2, tzinfo=UTC)
    assert offers_now(OFFERS, "web", later).empty


def test_expected_value_orders_the_offers_and_says_why() -> None:
    web = ranked("web")
    loyal = web[web[c.PERSON_ID] == "loyal"].set_index(c.OFFER_ID)
    # Shares: boot 1/1, sandal 1/2, kite 1/3 of 11/6: the boot takes 6/11.
    assert abs(loyal.loc["BOOT", "probability"] - 0.9 * 6 / 11) < 1e-9
    assert abs(loyal.loc["SHOES", "probability"] - 0.9 * 9 / 11) < 1e-9
    assert loyal.loc["SHOES", "probability"] > loyal.loc["TOYS", "probability"]
    assert best(web).set_index(c.PERSON_ID).loc["loyal", c.OFFER_ID] == "BOOT"  # 30 x 6/11
    assert (
        loyal.loc["BOOT", "reason"]
        == "Boot is #1 of their suggestions (bought together with socks)"
    )
    assert loyal.loc["SHOES", "reason"] == "2 of their top 3 suggestions are in shoes"


def test_retention_goes_only_to_the_retention_bands() -> None:
    email = ranked("email")
    assert "WINBACK" not in set(email.loc[email[c.PERSON_ID] == "loyal", c.OFFER_ID])
    leaving = best(email).set_index(c.PERSON_ID).loc["leaving"]
    assert leaving[c.OFFER_ID] == "WINBACK"  # 0.8 x 0.2 x 20 beats 0.2 x 9/11 x 8
    assert leaving["reason"] == "churn risk high (no purchase for 90 days)"


def test_a_store_offers_only_what_is_on_its_shelf_and_nothing_bought() -> None:
    store = ranked(
        "store", stock_items=frozenset({"sandal"}), stock_categories=frozenset({"shoes"})
    )
    assert set(store[c.OFFER_ID]) == {"SHOES", "CLUB"}
    bought = pd.DataFrame({c.PERSON_ID: ["loyal"], c.ITEM_ID: ["boot"]})
    pairs = eligible(offers_now(OFFERS, "web", NOW), PERSONS, Where("web"), bought=bought,
                     answered=NOTHING, retention_bands=["high"])  # fmt: skip
    assert ("loyal", "BOOT") not in set(zip(pairs[c.PERSON_ID], pairs[c.OFFER_ID], strict=True))
    boot = OFFERS.set_index(c.OFFER_ID).loc["BOOT"].to_dict() | {c.OFFER_ID: "BOOT"}
    assert still_open(boot, Where("web"), set()) is None
    assert still_open(boot, Where("web"), {"boot"}) == "the item was bought since"
    assert still_open(boot, Where("store", frozenset(), frozenset()), set()) == "out of stock here"
    assert still_open(None, Where("email"), set()) == "not on offer in email now"
