"""The decisioning ledgers on each database: caps count every channel, one open decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from features import columns as c
from service.decisioning import contact_policy as policy
from service.decisioning import decisions as ledger
from service.settings import ContactCaps, Settings

NOON = datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_caps_count_every_channel_and_windows_roll(engine: Engine) -> None:
    settings = Settings(channel_caps={"push": ContactCaps(per_day=2, per_week=5)})
    with engine.begin() as conn:
        policy.take_turn(conn, "contacts")
        policy.record(conn, [policy.Contact("P1", "C1", "email", "offer", "d1")], NOON)
        policy.take_turn(conn, "contacts")  # a second turn in the same transaction is fine
    with engine.connect() as conn:
        assert policy.over_cap(conn, settings, "email", NOON, ["P1", "P2"]) == {"P1"}
        assert policy.over_cap(conn, settings, "push", NOON, ["P1"]) == set()  # push allows 2
        tomorrow = NOON + timedelta(days=1, seconds=1)
        assert policy.over_cap(conn, settings, "email", tomorrow, ["P1"]) == set()
    with engine.begin() as conn:
        sent = [policy.Contact("P1", "C1", "sms", "trigger", f"t{i}") for i in range(2)]
        policy.record(conn, sent, NOON - timedelta(days=3))
    with engine.connect() as conn:  # three this week: the weekly cap of 3
        assert policy.over_cap(conn, settings, "email", tomorrow, ["P1"]) == {"P1"}


def test_quiet_hours_wrap_midnight_in_the_local_time_zone() -> None:
    settings = Settings(timezone="Europe/Berlin")
    evening = datetime(2026, 11, 23, 20, 30, tzinfo=UTC)  # 21:30 in Berlin
    ends = policy.quiet_until(settings, "push", evening)
    assert ends is not None and ends.hour == 8 and ends.date().day == 24
    assert policy.quiet_until(settings, "push", NOON) is None
    assert policy.quiet_until(settings, "email", evening) is None  # e-mail: none by default
    with pytest.raises(policy.UnknownChannel, match="fax"):
        policy.outbound("fax")


def test_one_open_decision_per_person(engine: Engine) -> None:
    made = pd.DataFrame(
        [{c.PERSON_ID: "P1", c.CUSTOMER_ID: "C1", c.OFFER_ID: "O1", c.CHANNEL: "web",
          c.STORE_ID: None, c.VALID_UNTIL: pd.Timestamp(NOON + timedelta(days=7)),
          "probability": 0.1, "expected_value": 0.8, "reason": "test"}]
    )  # fmt: skip
    with engine.begin() as conn:
        first = ledger.record(conn, made, NOON)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        ledger.record(conn, made.assign(**{c.OFFER_ID: "O2"}), NOON)
    with engine.begin() as conn:
        ledger.close(conn, [ledger.Closing(first["decision_id"].iloc[0], "accepted", "test")], NOON)
        ledger.record(conn, made.assign(**{c.OFFER_ID: "O2"}), NOON)
    with engine.connect() as conn:
        current = ledger.open_decisions(conn, ["P1"])
    assert current[c.OFFER_ID].tolist() == ["O2"]
