"""Quiet hours and "per day" caps in each customer's own time zone: their record's, else
their home store's, else the setting; two customers eight hours apart."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import Engine

from features.schema import TABLES
from features.validation import BatchRejected, validate
from service.decisioning import contact_policy as policy
from service.settings import ContactCaps, Settings
from service.storage.identities import rebuild_identities
from service.storage.writer import write_batch

SETTINGS = Settings(
    timezone="America/New_York",
    channel_caps={"push": ContactCaps(per_day=1, per_week=5, quiet_from=21, quiet_until=8)},
)


def store_with_two_customers(engine: Engine) -> None:
    """C1 lives by their London store (UTC in November), C2 in Singapore (UTC+8), C3 has
    neither: the setting's New York."""
    stores = pd.DataFrame({"store_id": ["S1"], "name": ["London"], "timezone": ["Europe/London"]})
    people = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3"],
            "home_store_id": ["S1", "S1", None],
            "timezone": [None, "Asia/Singapore", None],
            "consent_push": [True, True, True],
        }
    )
    with engine.begin() as conn:
        write_batch(conn, TABLES["stores"], validate(stores, TABLES["stores"]))
        write_batch(conn, TABLES["customers"], validate(people, TABLES["customers"]))
        rebuild_identities(conn)


def test_quiet_hours_are_each_customers_own_night(engine: Engine) -> None:
    store_with_two_customers(engine)
    with engine.connect() as conn:
        zones = policy.zones(conn, SETTINGS, ["C1", "C2", "C3"]).to_dict()
        assert zones == {"C1": "Europe/London", "C2": "Asia/Singapore", "C3": "America/New_York"}
        # 02:00 UTC: night in London and New York, ten in the morning in Singapore.
        early = datetime(2026, 11, 23, 2, tzinfo=UTC)
        quiet = policy.quiet_now(conn, SETTINGS, "push", early, ["C1", "C2", "C3"])
        assert set(quiet) == {"C1", "C3"}
        assert quiet["C1"] == datetime(2026, 11, 23, 8, tzinfo=UTC)
        # 15:00 UTC: 23:00 in Singapore, the afternoon in London and 10:00 in New York.
        late = datetime(2026, 11, 23, 15, tzinfo=UTC)
        assert set(policy.quiet_now(conn, SETTINGS, "push", late, ["C1", "C2", "C3"])) == {"C2"}


def test_a_days_cap_restarts_at_each_customers_midnight(engine: Engine) -> None:
    store_with_two_customers(engine)
    sent = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)  # 15:30 in London, 23:30 in Singapore
    with engine.begin() as conn:
        policy.take_turn(conn, "contacts")
        policy.record(
            conn, [policy.Contact(p, p, "push", "trigger", f"t{p}") for p in ("C1", "C2")], sent
        )
    later = datetime(2026, 11, 23, 17, tzinfo=UTC)  # still the 23rd in London, the 24th there
    with engine.connect() as conn:
        assert policy.over_cap(conn, SETTINGS, "push", later, ["C1", "C2"]) == {"C1"}


def test_an_unknown_time_zone_is_refused_by_name() -> None:
    bad = pd.DataFrame({"customer_id": ["C9"], "timezone": ["Mars/Olympus"]})
    with pytest.raises(BatchRejected) as refused:
        validate(bad, TABLES["customers"])
    message = str(refused.value.errors[0])
    assert "timezone" in message and "IANA time zone" in message and "Mars/Olympus" in message
