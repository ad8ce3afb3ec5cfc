"""Schema migrations: a store of the first release (with or without a revision) is
upgraded to this one with its data kept, on SQLite and PostgreSQL; with upgrading off it
is refused with a message that says what to run."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import func, inspect, select, text
from typer.testing import CliRunner

from features import columns as c
from service.settings import get_settings
from service.storage import wishes
from service.storage.engine import open_engine
from service.storage.migrate import FIRST, SchemaOutdated, config, head, revision_of
from service.storage.tables import (
    CHURN_DAYS_KEY,
    activity,
    catalogue,
    churn_days,
    customers,
    decisions,
    events,
    kind_weights,
    stores,
)
from training.cli import app


def first_release_store(url: str, *, with_revision: bool) -> None:
    """The first release's tables, a customer and two events; without a revision table
    when the store predates migrations."""
    engine = open_engine(url, create=False)
    with engine.begin() as conn:
        cfg = config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, FIRST)
        conn.execute(
            customers.insert(),
            [{c.CUSTOMER_ID: "C1", c.EMAIL: "ana@x.eu", c.CONSENT_EMAIL: True,
              c.CONSENT_SMS: False, c.CONSENT_PUSH: True}],
        )  # fmt: skip
        conn.execute(
            catalogue.insert(),
            [{c.ITEM_ID: "I1", c.CATEGORY: "shoes", c.BRAND: "Acme", c.ACTIVE: True}],
        )
        conn.execute(
            events.insert(),
            [{c.EVENT_ID: f"e{i}", c.TS: 1_700_000_000_000_000 + i, c.CUSTOMER_ID: "C1",
              c.CHANNEL: "web", c.TYPE: ("view", "wishlist")[i], c.ITEM_ID: "I1",
              "ingested_at": 1}
             for i in range(2)],
        )  # fmt: skip
        if not with_revision:
            conn.execute(text("DROP TABLE alembic_version"))
    engine.dispose()


@pytest.mark.parametrize("with_revision", [True, False], ids=["revision", "before-migrations"])
def test_a_first_release_store_is_upgraded_with_its_data(db_url: str, with_revision: bool) -> None:
    first_release_store(db_url, with_revision=with_revision)
    engine = open_engine(db_url)
    with engine.connect() as conn:
        assert revision_of(conn) == head()
        assert conn.execute(select(func.count()).select_from(events)).scalar() == 2
        assert conn.execute(select(customers.c[c.EMAIL])).scalar() == "ana@x.eu"
        # The online state the first release never had, rebuilt from its events.
        assert conn.execute(select(activity.c.events)).scalar() == 2
        assert [w.item_id for w in wishes.wish_list(conn, ["C1"], [])] == ["I1"]  # r0006
        # r0010: the person's interest, summed by the item's category and brand.
        kinds = conn.execute(select(kind_weights.c.category, kind_weights.c.brand)).all()
        assert [tuple(k) for k in kinds] == [("shoes", "Acme")]
        assert conn.execute(select(stores.c[c.LATITUDE])).all() == []  # r0005's column
        # r0011: the day rows (built by r0002) kept, keyed by type before day.
        days = conn.execute(select(churn_days.c[c.TYPE], churn_days.c.events)).all()
        assert sorted(tuple(d) for d in days) == [("view", 1), ("wishlist", 1)]
        key = inspect(conn).get_pk_constraint("churn_days")["constrained_columns"]
        assert tuple(key) == CHURN_DAYS_KEY
        assert conn.execute(select(func.count()).select_from(decisions)).scalar() == 0
        indexes = {i["name"] for i in inspect(conn).get_indexes("events")}
        columns = {col["name"] for col in inspect(conn).get_columns("customers")}
    assert "timezone" in columns  # r0003
    assert "ix_events_customer_ts" in indexes and "ix_events_anonymous" not in indexes
    assert "ix_events_customer_arrival" not in indexes  # r0010: no query read it
    engine.dispose()
    again = open_engine(db_url)  # at the newest revision: nothing to do
    with again.connect() as conn:
        assert revision_of(conn) == head()
    again.dispose()


def test_a_new_store_starts_at_the_newest_revision(db_url: str) -> None:
    engine = open_engine(db_url)
    with engine.connect() as conn:
        assert revision_of(conn) == head()
        assert set(inspect(conn).get_table_names()) >= {"events", "decisions", "tablet_sessions"}
    engine.dispose()


def test_without_auto_migrate_an_old_store_is_refused_until_omni_migrate(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_release_store(db_url, with_revision=True)
    with pytest.raises(SchemaOutdated, match="omni migrate"):
        open_engine(db_url, migrate=False)
    monkeypatch.setenv("OMNI_DATABASE_URL", db_url)
    monkeypatch.setenv("OMNI_AUTO_MIGRATE", "false")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        refused = runner.invoke(app, ["stats"])
        assert refused.exit_code == 2 and "run `omni migrate`" in refused.output
        migrated = runner.invoke(app, ["migrate"])
        assert migrated.exit_code == 0, migrated.output
        assert f"it was at {FIRST}" in migrated.output
        assert runner.invoke(app, ["stats"]).exit_code == 0
        again = runner.invoke(app, ["migrate"])
        assert "this release's newest" in again.output
    finally:
        get_settings.cache_clear()
