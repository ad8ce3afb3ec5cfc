"""Shared fixtures: a store on SQLite always, and on PostgreSQL when `make test` found one."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from sqlalchemy import Engine

from features import columns as c
from features.interactions import interactions, store_activity
from features.matrix import build_matrix
from features.schema import TABLES
from features.sources.files import read_folder
from features.synthetic import SyntheticConfig, SyntheticData, generate, write_synthetic
from features.validation import validate
from models import ItemKNN, Recommender
from service.registry import CHURN, RECOMMENDER
from service.settings import SCOPES, ApiKey, Settings
from service.storage.engine import open_engine, temporary_schema
from service.storage.reader import load_events, load_table
from service.storage.writer import write_batch
from training.ingest import ingest
from training.tracking import log_recommender, promote, setup
from training.train_churn import train_churn

POSTGRES_ENV = "OMNI_TEST_POSTGRES_URL"
#: API keys of the served store: every scope; recommendations only; a tablet in S001.
ADMIN_KEY, READ_KEY, TABLET_KEY = "admin-key-for-tests", "reader-key-for-tests", "tablet-key-s001"
#: The registry alias end-to-end servers serve (the in-process API tests keep champion).
E2E_ALIAS = "e2e"
#: The real data sets: ../shared/data beside the checkout, or wherever OMNI_SHARED_DATA says.
SHARED_DATA = Path(
    os.environ.get("OMNI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


SPARK_ENV = "OMNI_TEST_SPARK"


@pytest.fixture(scope="session")
def spark() -> Any:
    """The local Spark session (local[2]). `make test` sets OMNI_TEST_SPARK=required: there
    a missing PySpark or Java fails the test instead of skipping it."""
    required = os.environ.get(SPARK_ENV) == "required"
    missing = None
    try:
        import pyspark  # noqa: F401
    except ImportError:
        missing = "PySpark is not installed (pip install -e '.[spark]')"
    if missing is None and not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        missing = "no Java runtime (PySpark needs Java 17)"
    if missing:
        if required:
            pytest.fail(f"Spark tests cannot run: {missing}")
        pytest.skip(f"Spark not available: {missing}")
    from features.spark import session

    return session("local[2]", "2g")


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


@dataclass(frozen=True)
class ServedStore:
    """A store with synthetic data and both models registered as champion (for the API)."""

    settings: Settings
    data: Path
    recommender_version: str
    churn_version: str
    #: The service clock: the day after the last synthetic event.
    clock: datetime


def publish_recommender(settings: Settings, model: Recommender, alias: str = "champion") -> str:
    """Register `model` in the settings' registry and point `alias` at it; its version."""
    client = setup(settings, RECOMMENDER)
    with mlflow.start_run(run_name="test recommender"):
        version = log_recommender(model, client)
    promote(client, RECOMMENDER, alias, version)
    return version


def fit_recommender(settings: Settings, **params: float) -> Recommender:
    """An item-kNN recommender on everything in the settings' store (fast to fit)."""
    engine = open_engine(settings.database_url)
    try:
        events = load_events(engine)
        catalogue = load_table(engine, "catalogue")
    finally:
        engine.dispose()
    as_of = events[c.TS].max() + pd.Timedelta(seconds=1)
    matrix = build_matrix(
        interactions(events, as_of=as_of),
        as_of=as_of,
        catalogue=catalogue,
        stores=store_activity(events, as_of=as_of),
    )
    return ItemKNN(**params).fit(matrix)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def served_store(tmp_path_factory: pytest.TempPathFactory) -> ServedStore:
    """800 synthetic customers ingested into SQLite, an item-kNN recommender and a churn
    model registered and promoted to champion in a throwaway MLflow store."""
    root = tmp_path_factory.mktemp("served")
    settings = Settings(
        database_url=f"sqlite:///{root / 'omni.db'}",
        mlflow_tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}",
        mlflow_artifact_root=root / "mlruns" / "artifacts",
        api_keys={
            ADMIN_KEY: ApiKey(name="test-admin", scopes=list(SCOPES)),
            READ_KEY: ApiKey(name="test-reader", scopes=["recommend"]),
            TABLET_KEY: ApiKey(
                name="test-tablet",
                scopes=["recommend", "profile:read", "churn:read", "events:write"],
                store_id="S001",
            ),
        },
    )
    data = root / "data"
    write_synthetic(SyntheticConfig(customers=800, seed=5), data)
    engine = open_engine(settings.database_url)
    try:
        ingest(engine, read_folder(data))
        report = train_churn(engine, settings)
        clock = (load_events(engine)[c.TS].max() + pd.Timedelta(days=1)).ceil("D").to_pydatetime()
    finally:
        engine.dispose()
    client = setup(settings, CHURN)
    promote(client, CHURN, "champion", report.version)
    version = publish_recommender(settings, fit_recommender(settings))
    settings = settings.model_copy(update={"clock": clock})
    return ServedStore(settings, data, version, report.version, clock)


def copy_of(store: ServedStore, folder: Path, *, clock: datetime) -> ServedStore:
    """The same store copied into `folder` (its own ledgers, same registry), at `clock`."""
    source = store.settings.database_url.removeprefix("sqlite:///")
    target = folder / "omni.db"
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    settings = store.settings.model_copy(
        update={"database_url": f"sqlite:///{target}", "clock": clock}
    )
    return ServedStore(settings, store.data, store.recommender_version, store.churn_version, clock)


def add_customer(settings: Settings, cid: str, *, email: bool = True, push: bool = True) -> str:
    """A new customer record with these consents (sms: no)."""
    record = {"customer_id": cid, "name": cid, "email": f"{cid.lower()}@example.com",
              "consent_email": email, "consent_sms": False, "consent_push": push}  # fmt: skip
    engine = open_engine(settings.database_url)
    with engine.begin() as conn:
        schema = TABLES["customers"]
        write_batch(conn, schema, validate(pd.DataFrame([record]), schema))
    engine.dispose()
    return cid
