"""Schema migrations of the store (Alembic, `service/storage/migrations/`).

A new store is created at the newest revision in one step; a store made by an earlier
release is upgraded in order, its data kept. A store made before migrations existed (no
`alembic_version` table) holds at least the first release's tables: it is marked at the
first revision and upgraded from there (every later revision leaves what it finds in
place). On PostgreSQL an upgrade takes an advisory lock first, so that two processes
starting at once upgrade the store once.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from service.storage.tables import metadata

SCRIPTS = Path(__file__).with_name("migrations")
FIRST = "r0001"
#: Any number, the same in every process: the advisory lock PostgreSQL upgrades take.
_LOCK = 715_270_331


class SchemaOutdated(RuntimeError):
    """The store is at an older revision and upgrading was not allowed."""


def config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    return cfg


@cache
def head() -> str:
    """The newest revision this release knows."""
    newest = ScriptDirectory.from_config(config()).get_current_head()
    assert newest is not None
    return newest


def revision_of(conn: Connection) -> str | None:
    """The store's revision; None when it has none (new, or made before migrations)."""
    return MigrationContext.configure(conn).get_current_revision()


def ensure(engine: Engine, *, upgrade: bool = True) -> str | None:
    """Bring the store to the newest revision: create it when empty, upgrade it when
    older (with `upgrade`; else raise `SchemaOutdated`, saying how). Returns the revision
    it was at before (None: it was created or had no revision)."""
    with engine.connect() as conn:
        before = revision_of(conn)
        empty = not inspect(conn).get_table_names()
    if before == head():
        return before
    if not upgrade and not empty:
        raise SchemaOutdated(
            f"the store is at schema revision {before or 'of a release before migrations'}, "
            f"this Omni needs {head()}: run `omni migrate` (or set OMNI_AUTO_MIGRATE=true)"
        )
    with engine.begin() as conn:
        _lock(conn)
        before = revision_of(conn)  # another process may have upgraded it meanwhile
        if before == head():
            return before
        cfg = config()
        cfg.attributes["connection"] = conn
        if not inspect(conn).get_table_names():
            metadata.create_all(conn)
            command.stamp(cfg, "head")
            return None
        if before is None:
            command.stamp(cfg, FIRST)
        command.upgrade(cfg, "head")
    return before


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
