"""Schemathesis against a real `omni serve`: every status and body the service returns is
the one its OpenAPI document describes, whatever a client sends (`--checks all`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.registry import CHURN, connect
from tests.conftest import (
    ADMIN_KEY,
    E2E_ALIAS,
    ServedStore,
    copy_of,
    fit_recommender,
    publish_recommender,
)
from tests.e2e.conftest import server_env, serving

#: What schemathesis is told: the rules of three operations that no schema can state.
CONFIG = Path(__file__).with_name("schemathesis.toml")
#: Examples per operation and phase: enough to reach every status, a few minutes at most.
EXAMPLES = 60


@pytest.mark.slow
def test_schemathesis_finds_nothing(served_store: ServedStore, tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("schemathesis")
    if not cli.exists() and shutil.which("schemathesis") is None:
        pytest.skip("schemathesis is not installed (make setup installs the dev tools)")
    store = copy_of(served_store, tmp_path, clock=served_store.clock)  # it erases customers
    settings = store.settings
    publish_recommender(settings, fit_recommender(settings), alias=E2E_ALIAS)
    connect(settings).set_registered_model_alias(CHURN, E2E_ALIAS, served_store.churn_version)
    env = server_env(settings, OMNI_MODEL_ALIAS=E2E_ALIAS, OMNI_CLOCK=store.clock.isoformat(),
                     OMNI_AUTH_FAILURES_PER_MINUTE="100000")  # fmt: skip
    with serving(env, tmp_path / "server.log") as base:
        run = subprocess.run(
            [str(cli), "--config-file", str(CONFIG), "run", f"{base}/openapi.json",
             "--checks", "all",
             "--header", f"X-API-Key: {ADMIN_KEY}", "--max-examples", str(EXAMPLES),
             "--seed", "7", "--generation-deterministic", "--workers", "1",
             "--report", "junit", "--report-dir", str(tmp_path / "report")],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    (tmp_path / "schemathesis.txt").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
