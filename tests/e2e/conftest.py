"""A temporary store and MLflow registry, wired in through OMNI_* variables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.settings import get_settings


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("OMNI_DATABASE_URL", f"sqlite:///{tmp_path / 'omni.db'}")
    monkeypatch.setenv("OMNI_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    monkeypatch.setenv("OMNI_MLFLOW_ARTIFACT_ROOT", str(tmp_path / "mlruns" / "artifacts"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
