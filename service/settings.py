"""One settings object for every entry point, read from OMNI_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


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


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests override them rather than patching the environment."""
    return Settings()
