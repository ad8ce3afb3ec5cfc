"""Schemathesis against a real `omni serve`: every status and body the service returns is
the one its OpenAPI document describes, whatever a client sends (`--checks all`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY, ServedStore, copy_of
from tests.e2e.conftest import aliased_env, serving

#: What schemathesis is told: the rules of three operations that no schema can state.
CONFIG = Path(__file__).with_name("schemathesis.toml")
#: Examples per operation and phase: enough to reach every status, a few minutes at most.
EXAMPLES = 60


@pytest.mark.slow
def test_schemathesis_finds_nothing(served_store: ServedStore, tmp_path: Path) -> None:
    beside = Path(sys.executable).with_name("schemathesis")
    cli = str(beside) if beside.exists() else shutil.which("schemathesis")
    if cli is None:
        pytest.skip("schemathesis is not installed (make setup installs the dev tools)")
    store = copy_of(served_store, tmp_path, clock=served_store.clock)  # it erases customers
    env = aliased_env(store, OMNI_AUTH_FAILURES_PER_MINUTE="100000")
    with serving(env, tmp_path / "server.log") as base:
        run = subprocess.run(
            [cli, "--config-file", str(CONFIG), "run", f"{base}/openapi.json",
             "--checks", "all",
             "--header", f"X-API-Key: {ADMIN_KEY}", "--auth", f"{ADMIN_KEY}:",
             "--max-examples", str(EXAMPLES),
             "--seed", "7", "--generation-deterministic", "--workers", "1",
             "--report", "junit", "--report-dir", str(tmp_path / "report")],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    (tmp_path / "schemathesis.txt").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
