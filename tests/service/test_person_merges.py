"""Stable person ids in the store: a merge keeps the person's id, moves the absorbed
person's decision and contacts to them, and the caps still count every contact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import Engine, select

from features import columns as c
from features.schema import TABLES
from features.validation import validate
from service.decisioning import contact_policy as policy
from service.decisioning import decisions as ledger
from service.people import find_person
from service.settings import ContactCaps, Settings
from service.storage.identities import rebuild_identities
from service.storage.tables import decisions
from service.storage.writer import write_batch

NOON = datetime(2026, 11, 23, 12, tzinfo=UTC)


def customers(conn: object, *rows: tuple[str, str]) -> None:
    frame = pd.DataFrame(
        [{"customer_id": cid, "name": cid, "email": email, "consent_email": True,
          "consent_sms": False, "consent_push": True} for cid, email in rows]
    )  # fmt: skip
    schema = TABLES["customers"]
    write_batch(conn, schema, validate(frame, schema))  # type: ignore[arg-type]


def decide(conn: object, person: str, offer: str) -> None:
    made = pd.DataFrame(
        [{c.PERSON_ID: person, c.CUSTOMER_ID: person, c.OFFER_ID: offer, c.CHANNEL: "web",
          c.STORE_ID: None, c.VALID_UNTIL: pd.Timestamp(NOON + timedelta(days=7)),
          "probability": 0.1, "expected_value": 0.8, "reason": "test"}]
    )  # fmt: skip
    ledger.record(conn, made, NOON)  # type: ignore[arg-type]


def test_merges_keep_the_id_and_move_decisions_and_contacts(engine: Engine) -> None:
    with engine.begin() as conn:
        customers(conn, ("C5", "ana@x.eu"), ("C7", "bo@x.eu"))
        rebuild_identities(conn)
        decide(conn, "C5", "O1")
        decide(conn, "C7", "O2")
        policy.take_turn(conn, "contacts")
        policy.record(conn, [policy.Contact("C5", "C5", "email", "offer", "d1")], NOON)
        policy.record(conn, [policy.Contact("C7", "C7", "email", "offer", "d2")], NOON)
    # A loyalty card with Ana's address, and a smaller number: she stays C5.
    with engine.begin() as conn:
        customers(conn, ("C1", "ana@x.eu"))
        rebuild_identities(conn)
    with engine.connect() as conn:
        ana = find_person(conn, customer_id="C1")
        assert ana is not None and ana.person_id == "C5" and ana.customer_ids == ("C1", "C5")
        assert ledger.open_decisions(conn, ["C5"])[c.OFFER_ID].tolist() == ["O1"]
    # Bo turns out to be Ana (same address now): his ledgers become hers.
    with engine.begin() as conn:
        customers(conn, ("C7", "ana@x.eu"))
        rebuild_identities(conn)
    with engine.connect() as conn:
        person = find_person(conn, customer_id="C7")
        assert person is not None and person.person_id == "C5"
        assert ledger.open_decisions(conn, ["C5"])[c.OFFER_ID].tolist() == ["O1"]
        closed = conn.execute(
            select(decisions.c.status, decisions.c.closed_by).where(decisions.c[c.OFFER_ID] == "O2")
        ).one()
        assert tuple(closed) == ("ineligible", "merged into C5")
        assert ledger.open_decisions(conn, ["C7"]).empty
        # Both e-mails count against one person's cap of two a day.
        caps = Settings(channel_caps={"email": ContactCaps(per_day=2, per_week=5)})
        assert policy.over_cap(conn, caps, "email", NOON, ["C5"]) == {"C5"}
