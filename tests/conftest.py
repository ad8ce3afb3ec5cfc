"""Shared fixtures: a store on SQLite always, and on PostgreSQL when `make test` found one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from features.synthetic import SyntheticConfig, SyntheticData, generate
from service.storage.engine import open_engine, temporary_schema

POSTGRES_ENV = "OMNI_TEST_POSTGRES_URL"
#: The real data sets: ../shared/data beside the checkout, or wherever OMNI_SHARED_DATA says.
SHARED_DATA = Path(
    os.environ.get("OMNI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def _postgres_url() -> str | None:
    return os.environ.get(POSTGRES_ENV)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty store: a SQLite file, or a fresh schema on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'omni.db'}"
        return
    base = _postgres_url()
    if not base:
        pytest.skip(
            f"PostgreSQL not available: {POSTGRES_ENV} is not set "
            "(make test sets it when the server answers)"
        )
    with temporary_schema(base, prefix="omni_test") as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on an empty store with the schema created."""
    eng = open_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def small_world() -> SyntheticData:
    """A small synthetic data set, generated once per test session."""
    return generate(SyntheticConfig(customers=300, seed=11))


@pytest.fixture
def shared_data() -> Path:
    """The real data sets beside the project; tests that need them skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data sets not found at {SHARED_DATA}")
    return SHARED_DATA
