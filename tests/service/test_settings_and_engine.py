"""Settings come from OMNI_* variables; SQLite runs in WAL mode and makes its folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from service.settings import Settings, get_settings
from service.storage.engine import open_engine


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
