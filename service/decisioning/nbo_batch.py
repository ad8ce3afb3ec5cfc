"""Next-best offers for many customers at once (what `omni export offers` runs): the same
rules and ledger as one customer's ask (service.decisioning.nbo), in one pass."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from features import columns as c
from service.decisioning import decisions as ledger
from service.decisioning.nbo import (
    CANDIDATES,
    OFFER_FIELDS,
    answers_of,
    churn_frame,
    held_offer,
    offer_exposures,
    to_decisions,
    verdict,
)
from service.decisioning.offers import (
    CANDIDATE_COLUMNS,
    Where,
    best,
    eligible,
    has_tiers,
    offers_now,
    rank_offers,
)
from service.experiments.assignment import assign_all, held_out, quiet
from service.experiments.take_rates import read_rates
from service.loyalty import tiers_of
from service.recommending import left_out
from service.serving import Served
from service.settings import Settings
from service.shelf import Shelf
from service.storage import carts, cases, exposures
from service.storage.exposures import OFFER
from service.storage.reader import load_events

#: Top `n` item positions per customer position (`Recommender.rank`'s first array), by
#: whatever computes them: the served model here, or a batch engine's executors.
Ranker = Callable[[np.ndarray, int], np.ndarray]


def decide_all(
    engine: Engine,
    served: Served,
    shelf: Shelf,
    settings: Settings,
    customers: pd.Series,
    where: Where,
    now: datetime,
    rank: Ranker | None = None,
) -> pd.DataFrame:
    """Next-best offers for many persons at once (`customers`: customer id to write to, by
    person id): open decisions that still hold are kept, the others replaced, new ones
    recorded, all in one transaction. The candidates are ranked by `rank` (default: the
    served model, in this process). One row per person with an offer: the decision
    columns, the offer's fields and `reused`."""
    book = offers_now(shelf.offers(), where.channel, now)
    ids = customers.index.astype(str).tolist()
    wanted = set(ids)
    # The online state, read once for everyone: no person's history is loaded.
    answered = answers_of(load_events(engine, types=list(ledger.ANSWERS)))
    answered = answered[answered[c.PERSON_ID].isin(wanted)]
    with engine.connect() as conn:
        last = pd.DataFrame(
            carts.last_bought_by_person(conn), columns=[c.PERSON_ID, c.ITEM_ID, c.TS]
        )
        current = ledger.open_decisions(conn, ids)
    last = last[last[c.PERSON_ID].isin(wanted)]
    last[c.TS] = pd.to_datetime(last[c.TS], unit="us", utc=True)
    bought = left_out(served, last, now)
    by_person: dict[str, list[tuple[str, str, pd.Timestamp]]] = {}
    for p, kind, o, ts in answered[[c.PERSON_ID, c.TYPE, c.OFFER_ID, c.TS]].itertuples(index=False):
        by_person.setdefault(str(p), []).append((str(kind), str(o), ts))
    bought_by: dict[str, set[str]] = {}
    for p, i in bought[[c.PERSON_ID, c.ITEM_ID]].itertuples(index=False):
        bought_by.setdefault(str(p), set()).add(str(i))
    offers = {str(o[c.OFFER_ID]): o for o in book.to_dict("records")}
    ended: list[ledger.Closing] = []
    holds = []
    for decision in current.to_dict("records"):
        person_id = str(decision[c.PERSON_ID])
        closing = verdict(
            decision,
            by_person.get(person_id, []),
            bought_by.get(person_id, set()),
            offers.get(str(decision[c.OFFER_ID])),
            where,
            where.channel,
            now,
        )
        if closing is None:
            holds.append(decision["decision_id"])
        else:
            ended.append(closing)
    assigned = {} if quiet(settings, now) else assign_all(ids, settings, now)
    held_by = held_out(assigned, OFFER)
    kept = current[current["decision_id"].isin(holds) & ~current[c.PERSON_ID].isin(held_by)]
    standing = set(kept[c.PERSON_ID])
    rest = [p for p in ids if p not in standing]
    with engine.connect() as conn:
        persons = churn_frame(conn, served, rest, now, settings.answer_max_age_hours)
        held = cases.open_complaints(conn) if settings.hold_offers_during_complaint else set()
        tier_of = tiers_of(conn, rest, now, settings) if has_tiers(book) else None
    pairs = eligible(
        book,
        persons,
        where,
        bought=bought,
        answered=answered,
        retention_bands=settings.retention_bands,
        held=held & set(rest),
        tier_of=tier_of,
    )
    with engine.connect() as conn:
        rates = read_rates(conn, shelf.offers(), settings)
        since = now - timedelta(days=settings.decision_days)
        held_lately = exposures.held_persons_since(conn, OFFER, since) if held_by else set()
    ranked = rank_offers(pairs, persons, _batch_candidates(served, shelf, rest, rank), rates)
    likely = [p for p, a in assigned.items() if a.offer_policy == "probability"]
    top = best(ranked, likely)
    customer_of = {str(p): str(cid) for p, cid in customers.items()}
    would = top[top[c.PERSON_ID].isin(held_by)]
    top = top[~top[c.PERSON_ID].isin(held_by)]
    made = to_decisions(top, customer_of, where, None, now, settings)
    labels = {p: a.labels for p, a in assigned.items()}
    with engine.begin() as conn:
        ledger.close(conn, ended, now)
        made = ledger.record(conn, made, now)
        exposures.record(conn, offer_exposures(made.to_dict("records"), labels), now)
        exposures.record(
            conn,
            [
                held_offer(
                    str(p),
                    customer_of.get(str(p)),
                    where.channel,
                    labels.get(str(p), {}),
                    str(o),
                    held_by[str(p)],
                )
                for p, o in zip(would[c.PERSON_ID], would[c.OFFER_ID], strict=True)
                if str(p) not in held_lately
            ],
            now,
        )
    both = pd.concat([kept.assign(reused=True), made.assign(reused=False)], ignore_index=True)
    fields = book.set_index(c.OFFER_ID)[OFFER_FIELDS]
    decided: pd.DataFrame = both.join(fields, on=c.OFFER_ID)
    return decided.sort_values(c.PERSON_ID, ignore_index=True)


def _batch_candidates(
    served: Served, shelf: Shelf, ids: list[str], rank: Ranker | None
) -> pd.DataFrame:
    """Everyone's top suggestions from the served model in one pass (the precomputed top
    items where the service warmed them); persons it does not know get the best sellers."""
    model = served.recommender
    if model is None or not ids:
        return pd.DataFrame(columns=CANDIDATE_COLUMNS)
    rows = model.users_.positions(ids, missing="skip")
    known = rows >= 0
    n = min(CANDIDATES, len(model.items_))
    if served.warm is not None and served.warm.positions.shape[1] >= n:
        top = served.warm.positions[rows[known], :n].astype(np.int64)
    elif rank is not None:
        top = rank(rows[known], n)
    else:
        top = model.rank(rows[known], n)[0]
    popular = np.argsort(-model.item_popularity_, kind="stable")[:n]
    everyone = np.tile(popular, (len(ids), 1))
    everyone[known] = top
    people = np.repeat(np.asarray(ids, dtype=object), n)
    flat = everyone.ravel()
    keep = flat >= 0
    items = model.items_.ids[np.maximum(flat, 0)]
    catalogue = shelf.items()
    frame = pd.DataFrame(
        {
            c.PERSON_ID: people[keep],
            c.ITEM_ID: items[keep].astype(str),
            c.CATEGORY: model.item_category_[np.maximum(flat, 0)][keep],
            "rank": np.tile(np.arange(1, n + 1), len(ids))[keep],
            "reason": np.repeat(np.where(known, "suggested for them", "a best seller"), n)[keep],
        }
    )
    # Once per item of the catalogue, not once per candidate row.
    names = pd.Series({item_id: item.name for item_id, item in catalogue.items()}, dtype=object)
    frame[c.NAME] = frame[c.ITEM_ID].map(names).fillna(frame[c.ITEM_ID])
    return frame[CANDIDATE_COLUMNS]
