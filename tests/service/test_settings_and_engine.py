"""Settings come from OMNI_* variables; SQLite runs in WAL mode and makes its folder."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from service.settings import Settings, get_settings
from service.storage.engine import begin_write, open_engine, temporary_schema
from tests.conftest import POSTGRES_ENV, _postgres_url


def test_environment_overrides_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().database_url == "sqlite:///data/omni.db"
    monkeypatch.setenv("OMNI_DATABASE_URL", "sqlite:///elsewhere.db")
    monkeypatch.setenv("OMNI_CHUNK_ROWS", "500")
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert (settings.database_url, settings.chunk_rows) == ("sqlite:///elsewhere.db", 500)
    finally:
        get_settings.cache_clear()


def test_sqlite_store_uses_wal_and_creates_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "omni.db"
    engine = open_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert path.exists()
    finally:
        engine.dispose()


def test_sqlite_writers_wait_their_turn_on_the_lock_file(tmp_path: Path) -> None:
    # The intake's writers (any thread, any process) queue before the transaction
    # begins, and the next one goes in as soon as the one before has committed.
    engine = open_engine(f"sqlite:///{tmp_path / 'omni.db'}")
    order: list[str] = []
    holding = threading.Event()

    def first() -> None:
        with begin_write(engine) as conn:
            holding.set()
            time.sleep(0.3)
            conn.execute(text("CREATE TABLE marks (who TEXT)"))
            conn.execute(text("INSERT INTO marks VALUES ('first')"))
            order.append("first committed")

    writer = threading.Thread(target=first)
    writer.start()
    try:
        assert holding.wait(10)
        asked = time.perf_counter()
        with begin_write(engine) as conn:
            waited = time.perf_counter() - asked
            order.append("second in")
            conn.execute(text("INSERT INTO marks VALUES ('second')"))
    finally:
        writer.join()
    with engine.connect() as conn:
        marks = conn.execute(text("SELECT who FROM marks")).scalars().all()
    engine.dispose()
    assert order == ["first committed", "second in"] and waited >= 0.2
    assert marks == ["first", "second"]


@pytest.mark.postgres
def test_a_pooled_connection_dropped_while_idle_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server that dropped an idle connection (a restart, a firewall's timeout): the
    next request gets a fresh one, not an error. A connection back from work a moment
    ago is handed out without a ping."""
    base = _postgres_url()
    if not base:
        pytest.skip(f"PostgreSQL not available: {POSTGRES_ENV} is not set")
    with temporary_schema(base, prefix="omni_test") as db_url:
        engine = open_engine(db_url)
        try:
            with engine.connect() as conn:
                first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with engine.connect() as conn:  # just back: the same connection, no ping
                assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == first
            admin = open_engine(db_url, create=False)  # another client drops that session
            with admin.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            admin.dispose()
            monkeypatch.setattr("service.storage.engine.PING_IDLE_SECONDS", 0.0)
            with engine.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar_one() == 1
                assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != first
        finally:
            engine.dispose()
