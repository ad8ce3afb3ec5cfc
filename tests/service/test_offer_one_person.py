"""The one-person offer rules (what a single ask decides with) equal the frame functions
(what the e-mail export decides with) on random books, persons, shelves and suggestions."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pandas as pd
import pytest

from features import columns as c
from service.decisioning.offers import CANDIDATE_COLUMNS, Where, best, eligible, rank_offers
from service.decisioning.one_person import Suggested, Terms, best_one, eligible_one, rank_one
from service.experiments.take_rates import Rate, TakeRates
from service.storage.codec import micros

ITEMS = [f"i{n}" for n in range(12)]
CATEGORIES = ["shoes", "toys", "books", "garden"]
BANDS = ["low", "medium", "high", "lapsed"]
KINDS = ["product", "promotion", "retention", "service"]
TIERS = ["gold", "silver", "bronze"]
START, END = micros(datetime(2026, 11, 1, tzinfo=UTC)), micros(datetime(2026, 12, 1, tzinfo=UTC))


def _book(rng: random.Random) -> pd.DataFrame:
    rows = []
    for n in range(rng.randint(0, 14)):
        kind = rng.choice(KINDS)
        item = rng.choice(ITEMS) if kind == "product" or rng.random() < 0.1 else None
        category = rng.choice(CATEGORIES) if kind == "promotion" or rng.random() < 0.2 else None
        tiers = rng.choice([None, "", " gold ", "gold,silver", "silver, bronze"])
        rows.append({c.OFFER_ID: f"O{n:02d}", c.NAME: f"offer {n}", c.KIND: kind,
                     c.ITEM_ID: item, c.CATEGORY: category, c.CHANNELS: "",
                     c.VALID_FROM: START, c.VALID_UNTIL: END,
                     c.VALUE: float(rng.choice([1, 5, 8, 20, 30])), c.DESCRIPTION: None,
                     c.TIERS: tiers})  # fmt: skip
    columns = [c.OFFER_ID, c.NAME, c.KIND, c.ITEM_ID, c.CATEGORY, c.CHANNELS, c.VALID_FROM,
               c.VALID_UNTIL, c.VALUE, c.DESCRIPTION, c.TIERS]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _case(
    rng: random.Random,
) -> tuple[pd.DataFrame, Terms, Where, list[str] | None, list[Suggested], TakeRates, bool]:
    book = _book(rng)
    churn = None if rng.random() < 0.2 else rng.choice([0.0, 0.05, 0.3, 0.75, 1.0])
    terms = Terms(
        "p1",
        churn=churn,
        band=rng.choice([None, *BANDS]) if churn is None else rng.choice(BANDS),
        driver=rng.choice([None, "", "no purchase for 90 days"]),
        bought=frozenset(rng.sample(ITEMS, rng.randint(0, 4))),
        answered=frozenset(rng.sample([f"O{n:02d}" for n in range(14)], rng.randint(0, 3))),
        held=rng.random() < 0.2,
        tier=rng.choice([None, *TIERS]),
    )
    where = Where(
        rng.choice(["web", "store"]),
        frozenset(rng.sample(ITEMS, 6)) if rng.random() < 0.5 else None,
        frozenset(rng.sample(CATEGORIES, 2)) if rng.random() < 0.5 else None,
    )
    bands = rng.choice([None, ["high", "lapsed"], ["medium"]])
    suggested = [
        Suggested(item, rng.choice(CATEGORIES), f"reason {n}", f"name of {item}")
        for n, item in enumerate(rng.sample(ITEMS, rng.randint(0, 10)))
    ]
    rate = Rate(40, rng.randint(0, 40), rng.choice([0.0, 0.1, 0.3]), rng.random())
    rates = TakeRates(
        by_offer={"O01": rate} if rng.random() < 0.3 else {},
        by_kind={rng.choice(KINDS): rate} if rng.random() < 0.3 else {},
    )
    return book, terms, where, bands, suggested, rates, rng.random() < 0.3


def _frames(
    book: pd.DataFrame,
    terms: Terms,
    where: Where,
    bands: list[str] | None,
    suggested: list[Suggested],
    rates: TakeRates,
    likely: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the e-mail export's frame functions rank and choose for this one person."""
    pid = terms.person_id
    persons = pd.DataFrame(
        {c.PERSON_ID: [pid], "churn": [terms.churn], "band": [terms.band],
         "driver": [terms.driver]}
    )  # fmt: skip
    pairs = eligible(
        book,
        persons,
        where,
        bought=pd.DataFrame({c.PERSON_ID: pid, c.ITEM_ID: sorted(terms.bought)}),
        answered=pd.DataFrame({c.PERSON_ID: pid, c.OFFER_ID: sorted(terms.answered)}),
        retention_bands=bands,
        held={pid} if terms.held else (),
        tier_of=None if terms.tier is None else {pid: terms.tier},
    )
    candidates = pd.DataFrame(
        {c.PERSON_ID: pid, c.ITEM_ID: [s.item_id for s in suggested],
         c.CATEGORY: [s.category for s in suggested],
         "rank": list(range(1, len(suggested) + 1)), "reason": [s.reason for s in suggested],
         c.NAME: [s.name for s in suggested]},
        columns=CANDIDATE_COLUMNS,
    )  # fmt: skip
    ranked = rank_offers(pairs, persons, candidates, rates)
    return ranked, best(ranked, [pid] if likely else [])


@pytest.mark.parametrize("seed", range(400))
def test_one_person_ranks_and_chooses_as_the_frames_do(seed: int) -> None:
    book, terms, where, bands, suggested, rates, likely = _case(random.Random(seed))
    ranked, chosen = _frames(book, terms, where, bands, suggested, rates, likely)

    pairs = eligible_one(book.to_dict("records"), terms, where, bands)
    mine = rank_one(pairs, terms, suggested, rates)
    assert [r[c.OFFER_ID] for r in mine] == ranked[c.OFFER_ID].tolist()
    for row, (_, theirs) in zip(mine, ranked.iterrows(), strict=True):
        for field in ("probability", "expected_value", "prior"):
            assert row[field] == pytest.approx(float(theirs[field]), rel=1e-12, abs=1e-15)
        assert (row["reason"], row["source"]) == (theirs["reason"], theirs["source"])
    top = best_one(mine, likely)
    assert (None if top is None else top[c.OFFER_ID]) == (
        chosen[c.OFFER_ID].iloc[0] if len(chosen) else None
    )


def test_the_cases_reach_every_rule() -> None:
    """The random cases are not all alike: some offers are left out, and every kind of
    reason a chosen offer can carry is given (retention, item, category, open to all)."""
    kept = ranked_total = 0
    reasons: set[str] = set()
    for seed in range(400):
        book, terms, where, bands, suggested, rates, _ = _case(random.Random(seed))
        pairs = eligible_one(book.to_dict("records"), terms, where, bands)
        kept += len(pairs)
        ranked_total += len(book)
        for row in rank_one(pairs, terms, suggested, rates):
            reasons.add(str(row["reason"]).split(" ")[0])
    assert 0 < kept < ranked_total
    assert {"churn", "open"} <= reasons
    assert any(r.startswith("name") for r in reasons)
    assert any(r.isdigit() for r in reasons)
