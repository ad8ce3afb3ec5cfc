"""One settings object for every entry point, read from OMNI_* environment variables."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: What an API key may be allowed to do.
SCOPES = ("events:write", "recommend", "churn:read", "profile:read", "admin")


class ApiKey(BaseModel):
    """One API key: who holds it, what it may do, and optionally the one store it serves."""

    name: str
    scopes: list[str] = Field(default_factory=list)
    #: A key bound to a store (a store tablet) sees only that store's stock.
    store_id: str | None = None


class Settings(BaseSettings):
    """Where Omni keeps its state. Every field can be set as OMNI_<FIELD> or in `.env`."""

    model_config = SettingsConfigDict(env_prefix="OMNI_", env_file=".env", extra="ignore")

    #: The event store and online state: SQLite (WAL) by default, PostgreSQL by URL.
    database_url: str = "sqlite:///data/omni.db"
    #: MLflow tracking and registry (the plain ./mlruns file store is not used).
    mlflow_tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    #: Where MLflow writes artifacts.
    mlflow_artifact_root: Path = Path("mlruns/artifacts")
    #: Where `omni generate` writes the synthetic data set by default.
    data_dir: Path = Path("data/synthetic")
    #: Rows per chunk when events are written or read back.
    chunk_rows: int = 100_000
    #: API keys, as JSON: {"<key>": {"name": "...", "scopes": [...], "store_id": null}}.
    api_keys: dict[str, ApiKey] = Field(default_factory=dict)
    #: The registry alias the service serves.
    model_alias: str = "champion"
    #: Seconds between checks of the registry for a new version (0: only on reload).
    reload_poll_seconds: float = 0
    #: Items precomputed per known customer when a recommender loads (0: score on demand).
    warm_top_n: int = 100
    #: The service's clock for churn and fold-in ("now" when unset); set it to replay a
    #: historical data set as if it were live.
    clock: datetime | None = None
    #: Seconds a store's stock list is cached before it is read again.
    stock_ttl_seconds: float = 30


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests override them rather than patching the environment."""
    return Settings()
