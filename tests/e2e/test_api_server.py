"""The API as it runs: a real uvicorn process on a free port, over a real store and registry."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx2
import pytest

from tests.conftest import (
    ADMIN_KEY,
    E2E_ALIAS,
    ServedStore,
    copy_of,
    fit_recommender,
    publish_recommender,
)
from tests.e2e.conftest import server_env, serving

HEADERS = {"X-API-Key": ADMIN_KEY}


@pytest.mark.slow
def test_events_change_answers_and_reload_drops_nothing(
    server: str, served_store: ServedStore
) -> None:
    with httpx2.Client(base_url=server, headers=HEADERS, timeout=10) as http:
        _flow(http, server, served_store)


def _flow(http: httpx2.Client, server: str, served_store: ServedStore) -> None:
    url = "/v1/customers/C0000050/recommendations?k=10&include_purchased=true"
    before = http.get(url).json()
    assert before["basis"] == "history"
    old_version = before["model_version"]
    ts = (served_store.clock - timedelta(minutes=1)).isoformat()
    carts = [
        {"event_id": f"e2e-{i}", "ts": ts, "customer_id": "C0000050", "channel": "web",
         "type": "add_to_cart", "item_id": item}
        for i, item in enumerate(["I000300", "I000301", "I000302"])
    ]  # fmt: skip
    assert http.post("/v1/events", json={"events": carts}).json()["accepted"] == 3
    after = http.get(url).json()
    assert [i["item_id"] for i in after["items"]] != [i["item_id"] for i in before["items"]]
    profile = http.get("/v1/customers/C0000050/profile").json()
    assert {"I000300", "I000301", "I000302"} <= {line["item_id"] for line in profile["cart"]}

    # A new version is promoted; requests keep flowing while the service swaps to it.
    settings = served_store.settings
    new_version = publish_recommender(
        settings, fit_recommender(settings, neighbours=20), alias=E2E_ALIAS
    )
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer(customer: str) -> None:
        with httpx2.Client(base_url=server, headers=HEADERS, timeout=10) as own:
            while not stop.is_set():
                answer = own.get(f"/v1/customers/{customer}/recommendations?k=5")
                statuses.append(answer.status_code)
                if answer.status_code == 200:
                    versions.add(answer.json()["model_version"])

    workers = [threading.Thread(target=hammer, args=(f"C00000{n}",)) for n in (61, 62, 63)]
    for worker in workers:
        worker.start()
    time.sleep(0.5)
    reloaded = http.post("/v1/admin/reload", timeout=120).json()
    time.sleep(0.5)
    stop.set()
    for worker in workers:
        worker.join()
    outcome = {o["model"]: o for o in reloaded}
    assert outcome["omni-recommender"]["status"] == "loaded"
    assert outcome["omni-recommender"]["version"] == new_version
    assert outcome["omni-churn"]["status"] == "unchanged"
    assert len(statuses) > 20 and set(statuses) == {200}
    assert versions == {old_version, new_version}
    assert http.get("/ready").json()["models"]["omni-recommender"] == new_version
    metrics = http.get("/metrics").text
    assert 'omni_model_version{model="omni-recommender"}' in metrics


@pytest.mark.slow
def test_a_write_waiting_for_a_lock_does_not_stall_reads(
    served_store: ServedStore, tmp_path: Path
) -> None:
    """A batch of events waits for the database's write lock (held by another writer):
    meanwhile the same worker answers reads at once, and the batch lands when it is
    released."""
    store = copy_of(served_store, tmp_path, clock=served_store.clock)
    env = server_env(store.settings, OMNI_CLOCK=store.clock.isoformat())
    event = {"event_id": "stall-1", "ts": (store.clock - timedelta(minutes=5)).isoformat(),
             "customer_id": "C0000070", "channel": "web", "type": "view",
             "item_id": "I000010"}  # fmt: skip
    with serving(env, tmp_path / "server.log") as base:
        lock = sqlite3.connect(store.settings.database_url.removeprefix("sqlite:///"))
        lock.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
        written: list[int] = []

        def write() -> None:
            with httpx2.Client(base_url=base, headers=HEADERS, timeout=60) as http:
                written.append(http.post("/v1/events", json={"events": [event]}).status_code)

        writer = threading.Thread(target=write)
        writer.start()
        try:
            time.sleep(1.0)  # the write is waiting in the worker's thread pool
            assert not written
            with httpx2.Client(base_url=base, headers=HEADERS, timeout=5) as http:
                for _ in range(5):
                    started = time.monotonic()
                    answer = http.get("/v1/customers/C0000071/recommendations?k=5")
                    assert answer.status_code == 200
                    assert time.monotonic() - started < 2.0
            assert not written
        finally:
            lock.rollback()
            lock.close()
        writer.join(timeout=60)
        assert written == [200]


@pytest.mark.slow
def test_workers_die_with_a_killed_supervisor(served_store: ServedStore, tmp_path: Path) -> None:
    """`omni serve --workers 2` killed outright: its workers stop and free the port."""
    env = server_env(served_store.settings, OMNI_CLOCK=served_store.clock.isoformat())
    with serving(env, tmp_path / "server.log", "--workers", "2") as base:
        port = int(base.rsplit(":", 1)[1])
        supervisor = _listening_parent(port)
        assert httpx2.get(f"{base}/health", timeout=5).status_code == 200
        os.kill(supervisor, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _answers(base):
            time.sleep(0.5)
        assert not _answers(base), "the workers kept serving after their supervisor died"
        with socket.socket() as sock:  # a restart can bind the port again
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))


def _answers(base: str) -> bool:
    try:
        httpx2.get(f"{base}/health", timeout=2)
    except httpx2.TransportError:
        return False
    return True


def _listening_parent(port: int) -> int:
    """The `omni serve` supervisor: the process whose children serve on `port`."""
    for status in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = status.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in words and str(port).encode() in words and b"--workers" in words:
            return int(status.parent.name)
    raise AssertionError(f"no omni serve process for port {port}")
