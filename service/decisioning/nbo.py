"""The next-best offer for one customer as a channel asks (the API, the tablet), and the
rules it shares with the batch for everyone (service.decisioning.nbo_batch): both read
and write the same decisions ledger."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from features import columns as c
from service.churn_scoring import ChurnAnswer, churn_now, churn_now_many
from service.decisioning import decisions as ledger
from service.decisioning import one_person
from service.decisioning.contact_policy import CONSENT, consenting
from service.decisioning.offers import (
    Where,
    offer_fields,
    open_in,
    still_open,
)
from service.experiments.assignment import Assignment, assign
from service.loyalty import loyalty_of
from service.people import Person, person_moves, seen_of
from service.recommending import Ask, left_out_items, recommend
from service.serving import ModelUnavailable, Served
from service.settings import Settings
from service.shelf import Shelf
from service.storage import carts, cases, churn_days, exposures
from service.storage.codec import DAY, micros
from service.storage.engine import for_reads
from service.storage.exposures import OFFER

#: Suggested items the offers are weighed against.
CANDIDATES = 100
BUY = c.EventType.PURCHASE.value
#: What a decision takes from the chosen offer's row (`one_decision` adds the rest).
DECIDED = [c.PERSON_ID, c.OFFER_ID, c.VALID_UNTIL, "probability", "expected_value", "reason",
           "prior", "source"]  # fmt: skip
OFFER_FIELDS = [c.NAME, c.KIND, c.ITEM_ID, c.CATEGORY, c.VALUE, c.DESCRIPTION]


class NoConsent(Exception):
    """The customer does not consent to marketing in the channel asked for."""


class HeldOut(Exception):
    """The customer is held out of offers (the global control group or an experiment's
    arm): nothing is offered, and the offer they would have got is recorded as held."""

    def __init__(self, held_by: str, arms: Mapping[str, str]) -> None:
        super().__init__(f"held out of offers ({held_by}) to measure what offers change")
        self.held_by = held_by
        self.arms = dict(arms)


@dataclass(frozen=True)
class Offered:
    """One decision as a channel sees it."""

    decision_id: str
    #: The offer's fields (offers.offer_fields).
    offer: dict[str, object]
    probability: float
    expected_value: float
    reason: str
    decided_at: datetime
    valid_until: datetime
    #: The channel (and store) that asked when the decision was made.
    decided_in: str
    #: False when this ask made the decision, True when an earlier one stands.
    reused: bool
    #: Where `probability` came from: "prior" (the models and assumed rates) or the
    #: learned take rate used.
    source: str = "prior"
    #: The running experiments' arms the customer is in.
    arms: Mapping[str, str] = field(default_factory=dict)

    @property
    def served_id(self) -> str:
        """What events send back to be attributed to this offer: its decision id."""
        return self.decision_id


def where_for(shelf: Shelf, channel: str, store_id: str | None) -> Where:
    """The asking channel, with the store's shelf when a store asks."""
    if store_id is None:
        return Where(channel)
    stock = shelf.stock(store_id)
    items = shelf.items()
    categories = frozenset(items[i].category for i in stock if i in items)
    return Where(channel, frozenset(stock), categories)


@dataclass(frozen=True)
class OfferAsk:
    """Who asks for whose offer, where, and when."""

    person: Person
    customer_id: str
    where: Where
    store_id: str | None
    now: datetime

    @property
    def asked(self) -> str:
        return f"{self.where.channel} {self.store_id}" if self.store_id else self.where.channel


def next_best_offer(
    engine: Engine, served: Served, shelf: Shelf, settings: Settings, ask: OfferAsk
) -> Offered | None:
    """The person's open decision when it still holds where asked, else a new one
    (recorded); None when no offer is open to them (remembered: the same ask answers
    None again, without deciding, until an event of theirs arrives or
    `settings.no_offer_seconds` pass). Raises `NoConsent` for an outbound channel they
    do not consent to, `HeldOut` when they are held out of offers."""
    assignment = assign(ask.person.person_id, settings, ask.now)
    held_by = assignment.held_from(OFFER)
    if held_by is not None:
        hold_back(engine, served, shelf, settings, ask, assignment, held_by)
        raise HeldOut(held_by, assignment.labels)
    standing, ended = standing_offer(engine, shelf, ask)
    if standing is not None:
        return replace(standing, arms=assignment.labels)
    if not ended and _nothing_stands(engine, ask, settings.no_offer_seconds):
        return None
    return decide(engine, served, shelf, settings, ask, ended, assignment)


def hold_back(
    engine: Engine,
    served: Served,
    shelf: Shelf,
    settings: Settings,
    ask: OfferAsk,
    assignment: Assignment,
    held_by: str,
) -> None:
    """Record the offer a held-out person would have got now, once per decision period
    (`settings.decision_days`): the moment they would have been contacted, for a fair
    comparison. Raises `NoConsent` where they could not have been contacted anyway."""
    person, now = ask.person, ask.now
    with for_reads(engine).connect() as conn:
        _check_consent(conn, ask)
        since = now - timedelta(days=settings.decision_days)
        if exposures.held_since(conn, person.person_id, OFFER, since):
            return
    if _nothing_stands(engine, ask, settings.no_offer_seconds):
        return
    made_at = _wall_micros()
    top, _ = choose(engine, served, shelf, settings, ask, assignment)
    with engine.begin() as conn:
        if top is None:
            ledger.remember_nothing(conn, person.person_id, ask.asked, made_at)
            return
        would = held_offer(person.person_id, ask.customer_id, ask.where.channel,
                           assignment.labels, str(top[c.OFFER_ID]), held_by,
                           store_id=ask.store_id)  # fmt: skip
        exposures.record(conn, [would], now)


def standing_offer(
    engine: Engine, shelf: Shelf, ask: OfferAsk
) -> tuple[Offered | None, list[ledger.Closing]]:
    """The open decision when it still stands where asked (a few indexed rows, no model:
    milliseconds), else None and why the open one ended. Raises `NoConsent`."""
    where, person = ask.where, ask.person
    with for_reads(engine).connect() as conn:
        _check_consent(conn, ask)
        current = ledger.open_decision(conn, person.person_id)
        if current is None:
            return None, []
        moves = person_moves(
            conn, person, current["decided_at"].to_pydatetime(), [*ledger.ANSWERS, BUY]
        )
    answers = [(k, str(o), ts) for k, _, o, ts in moves if k in ledger.ANSWERS]
    bought = {str(i) for k, i, _, _ in moves if k == BUY}
    offer = shelf.offer(current[c.OFFER_ID])
    if offer is not None and not open_in(offer, where.channel, micros(ask.now)):
        offer = None
    closing = verdict(current, answers, bought, offer, where, ask.asked, ask.now)
    if closing is None and offer is not None:
        return _offered(current, offer, reused=True), []
    return None, [closing] if closing is not None else []


def _check_consent(conn: Connection, ask: OfferAsk) -> None:
    """Raise `NoConsent` when the person does not consent to the outbound channel asked."""
    channel, person_id = ask.where.channel, ask.person.person_id
    if channel in CONSENT and person_id not in consenting(conn, channel, [person_id]):
        raise NoConsent(f"customer '{ask.customer_id}' does not consent to {channel}")


def _nothing_stands(engine: Engine, ask: OfferAsk, max_age_seconds: float) -> bool:
    """Whether an ask of the person where they are asked found no offer open, recently
    enough and with nothing of theirs arrived since."""
    person = ask.person
    with for_reads(engine).connect() as conn:
        made = ledger.nothing_since(conn, person.person_id, ask.asked)
        if made is None or _wall_micros() - made >= max_age_seconds * 1e6:
            return False
        seen = seen_of(conn, person)
    return seen is None or seen.last_arrival < made


def choose(
    engine: Engine,
    served: Served,
    shelf: Shelf,
    settings: Settings,
    ask: OfferAsk,
    assignment: Assignment,
) -> tuple[dict[str, Any] | None, list[dict[Any, Any]]]:
    """The person's best offer where asked (a row of `rank_offers`, None when no offer is
    open to them) and the offer book it came from; reads their online state (churn now,
    what they bought lately, the offers they answered) and their suggestions, never their
    history. The rules of the frame functions, for one person (`one_person`)."""
    person, where, now = ask.person, ask.where, ask.now
    at = micros(now)
    book = [offer for offer in shelf.offer_rows() if open_in(offer, where.channel, at)]
    tiered = any(one_person.tiers_of(offer) for offer in book)
    with for_reads(engine).connect() as conn:
        churn = _churn_now(conn, served, person, now, settings.answer_max_age_hours)
        last = carts.last_bought(conn, person.customer_ids, person.anonymous_ids)
        answered = answered_offers(conn, person)
        complaining = settings.hold_offers_during_complaint and cases.has_open_complaint(
            conn, person.customer_ids, person.anonymous_ids
        )
        tier = loyalty_of(conn, person, now, settings).tier if tiered else None
        suggested = _suggested(served, shelf, conn, person, now)
    terms = one_person.Terms(
        person.person_id,
        churn=None if churn is None else churn.probability,
        band=None if churn is None else churn.band,
        driver=churn.drivers[0] if churn is not None and churn.drivers else None,
        bought=left_out_items(served, last, now),
        answered=frozenset(answered),
        held=bool(complaining),
        tier=tier,
    )
    pairs = one_person.eligible_one(book, terms, where, settings.retention_bands)
    ranked = one_person.rank_one(pairs, terms, suggested, shelf.take_rates(settings))
    return one_person.best_one(ranked, assignment.offer_policy == "probability"), book


def decide(
    engine: Engine,
    served: Served,
    shelf: Shelf,
    settings: Settings,
    ask: OfferAsk,
    ended: list[ledger.Closing],
    assignment: Assignment,
) -> Offered | None:
    """A new decision for the person (closing `ended` in the same transaction), recorded
    with its exposure; None when no offer is open to them."""
    person, now = ask.person, ask.now
    made_at = _wall_micros()  # what arrives from now on is not in this decision
    top, book = choose(engine, served, shelf, settings, ask, assignment)
    made = None if top is None else one_decision(top, ask, settings)
    try:
        with engine.begin() as conn:
            ledger.close(conn, ended, now)
            if made is None:
                ledger.remember_nothing(conn, person.person_id, ask.asked, made_at)
            else:
                made = ledger.record_one(conn, made, now)
                labels = {person.person_id: assignment.labels}
                exposures.record(conn, offer_exposures([made], labels), now)
    except IntegrityError:  # another channel decided first: theirs stands
        with for_reads(engine).connect() as conn:
            theirs = ledger.open_decision(conn, person.person_id)
        if theirs is None:
            raise
        offer = _offer_in(book, theirs[c.OFFER_ID])
        if offer is None:
            return None
        return replace(_offered(theirs, offer, reused=True), arms=assignment.labels)
    if made is None:
        return None
    offer = _offer_in(book, made[c.OFFER_ID])
    if offer is None:
        return None
    return replace(_offered(made, offer, reused=False), arms=assignment.labels)


def one_decision(top: Mapping[str, Any], ask: OfferAsk, settings: Settings) -> dict[str, Any]:
    """The decision to record for one ask's chosen offer (`to_decisions` for one person):
    it stands until its offer ends or the decision period passes (microseconds)."""
    cap = micros(ask.now) + settings.decision_days * DAY
    return {
        **{k: top[k] for k in DECIDED if k != c.VALID_UNTIL},
        c.CUSTOMER_ID: ask.customer_id,
        c.CHANNEL: ask.where.channel,
        c.STORE_ID: ask.store_id,
        c.VALID_UNTIL: min(int(top[c.VALID_UNTIL]), cap),
    }


def offer_exposures(
    made: Iterable[Mapping[Any, Any]], arms: Mapping[str, Mapping[str, str]]
) -> list[exposures.Exposure]:
    """The exposures of recorded decisions (their decision ids are their served ids);
    `arms`: each person's experiment labels, by person id."""
    rows = []
    for d in made:
        person_id = str(d[c.PERSON_ID])
        customer, store = d.get(c.CUSTOMER_ID), d.get(c.STORE_ID)
        rows.append(
            exposures.Exposure(
                str(d["decision_id"]),
                person_id,
                customer if isinstance(customer, str) else None,
                OFFER,
                str(d[c.CHANNEL]),
                arms.get(person_id, {}),
                store_id=store if isinstance(store, str) else None,
                ref=str(d["decision_id"]),
                offer_id=str(d[c.OFFER_ID]),
            )
        )
    return rows


def held_offer(
    person_id: str,
    customer_id: str | None,
    channel: str,
    arms: Mapping[str, str],
    offer_id: str,
    held_by: str,
    store_id: str | None = None,
) -> exposures.Exposure:
    """The exposure of an offer a held-out person would have got (it has no decision: a
    served id of its own)."""
    return exposures.Exposure(uuid.uuid4().hex, person_id, customer_id, OFFER, channel, arms,
                              store_id=store_id, offer_id=offer_id, held_by=held_by)  # fmt: skip


def _churn_now(
    conn: Connection, served: Served, person: Person, now: datetime, max_age_hours: float
) -> ChurnAnswer | None:
    """The person's churn answer as the API gives it; None without a churn model."""
    try:
        return churn_now(conn, served, person, now, max_age_hours)
    except ModelUnavailable:
        return None


def answered_offers(conn: Connection, person: Person) -> set[str]:
    """The offers the person accepted or declined: read on the days their state says they
    answered one, never their whole history."""
    types = list(ledger.ANSWERS)
    spans = churn_days.spans(conn, person.customer_ids, person.anonymous_ids, types)
    return {str(o) for _, _, o, _ in person_moves(conn, person, None, types, spans) if o}


def _wall_micros() -> int:
    """Now on the arrival clock (`events.ingested_at`), in microseconds."""
    return int(time.time() * 1_000_000)


def _offer_in(book: list[dict[Any, Any]], offer_id: object) -> dict[Any, Any] | None:
    return next((offer for offer in book if offer[c.OFFER_ID] == offer_id), None)


def verdict(
    decision: Mapping[Any, Any],
    answers: list[tuple[str, str, pd.Timestamp]],
    bought: set[str],
    offer: Mapping[Any, Any] | None,
    where: Where,
    asked: str,
    now: datetime,
) -> ledger.Closing | None:
    """None when an open decision stands where it is asked (`asked` names the channel and
    store); else why it ends: answered, expired, or its offer no longer open there."""
    closing = ledger.ending(decision, answers, now)
    if closing is not None:
        return closing
    why = still_open(offer, where, bought)
    if why is None:
        return None
    return ledger.Closing(str(decision["decision_id"]), "ineligible", f"{asked}: {why}")


def churn_frame(
    conn: Connection, served: Served, ids: list[str], now: datetime, max_age_hours: float
) -> pd.DataFrame:
    """person_id, churn, band, driver for `ids` as each one's own ask would get them
    (churn None without a churn model)."""
    try:
        scores: dict[str, ChurnAnswer] | None = churn_now_many(
            conn, served, ids, now, max_age_hours
        )
    except ModelUnavailable:
        scores = None
    return _churn_columns(ids, scores)


def _churn_columns(ids: list[str], answers: Mapping[str, ChurnAnswer] | None) -> pd.DataFrame:
    """person_id, churn, band, driver for `ids` from their answers (None: no churn model,
    every column but the id None)."""
    if answers is None:
        return pd.DataFrame({c.PERSON_ID: ids, "churn": None, "band": None, "driver": None})
    return pd.DataFrame(
        {
            c.PERSON_ID: ids,
            "churn": [answers[p].probability for p in ids],
            "band": [answers[p].band for p in ids],
            "driver": [answers[p].drivers[0] if answers[p].drivers else None for p in ids],
        }
    )


def _suggested(
    served: Served, shelf: Shelf, conn: Connection, person: Person, now: datetime
) -> list[one_person.Suggested]:
    """The person's suggestions as the API gives them (fold-in, reasons and all)."""
    try:
        answer = recommend(served, shelf, conn, person, Ask(k=CANDIDATES), now)
    except ModelUnavailable:
        return []
    return [one_person.Suggested(s.item_id, s.category, s.reason, s.name) for s in answer.items]


def to_decisions(
    top: pd.DataFrame,
    customer_of: dict[str, str],
    where: Where,
    store_id: str | None,
    now: datetime,
    settings: Settings,
) -> pd.DataFrame:
    made = top.copy()
    made[c.CUSTOMER_ID] = top[c.PERSON_ID].map(customer_of)
    made[c.CHANNEL] = where.channel
    made[c.STORE_ID] = store_id
    made[c.VALID_UNTIL] = ledger.valid_until(top[c.VALID_UNTIL], now, settings.decision_days)
    return made[
        [col for col in ledger.DECISION_COLUMNS if col not in ("decision_id", "decided_at")]
    ]


def answers_of(events: pd.DataFrame) -> pd.DataFrame:
    """The persons' offer_accepted / offer_declined events."""
    mask = events[c.TYPE].isin(list(ledger.ANSWERS)) & events[c.OFFER_ID].notna()
    return events.loc[mask, [c.PERSON_ID, c.OFFER_ID, c.TYPE, c.TS]]


def _offered(decision: Mapping[Any, Any], offer: Mapping[Any, Any], *, reused: bool) -> Offered:
    store = decision[c.STORE_ID]
    decided_in = f"{decision[c.CHANNEL]} {store}" if isinstance(store, str) else decision[c.CHANNEL]
    return Offered(
        decision_id=str(decision["decision_id"]),
        offer=offer_fields(offer),
        probability=round(float(decision["probability"]), 6),
        expected_value=round(float(decision["expected_value"]), 6),
        reason=str(decision["reason"]),
        decided_at=pd.Timestamp(decision["decided_at"]).to_pydatetime(),
        valid_until=pd.Timestamp(decision[c.VALID_UNTIL]).to_pydatetime(),
        decided_in=str(decided_in),
        reused=reused,
        source=str(decision.get("source") or "prior"),
    )
