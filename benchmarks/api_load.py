"""API load: Omni's server against `mlflow models serve` with the same recommender, on loopback.

    .venv/bin/python benchmarks/api_load.py            # 100,000 customers, 20,000 items

Builds a synthetic store (SQLite), fits ALS on it and a churn model, registers both in a
throwaway MLflow store as champion, starts `omni serve` and `mlflow models serve` on free
local ports, then drives each with benchmarks/loadgen.py: the highest throughput with 8
connections (closed loop), and recommendations at a fixed 500 requests/s (open loop,
latency counted from when each request was due). Results: benchmarks/results/api_load.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
import mlflow
import pandas as pd
from loadgen import closed_loop, get, open_loop, post

from features import columns as c
from features.interactions import interactions, store_activity
from features.matrix import build_matrix
from features.sources.files import read_folder
from features.synthetic import SyntheticConfig, write_synthetic
from models import ALS
from service.registry import CHURN, RECOMMENDER
from service.settings import SCOPES, ApiKey, Settings
from service.storage.engine import open_engine
from service.storage.reader import load_events, load_table
from training.ingest import ingest
from training.tracking import log_recommender, promote, setup
from training.train_churn import train_churn

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key"
HEADERS = {"X-API-Key": KEY}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 900) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            if httpx2.get(url, timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx2.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {seconds} s")


def settings_for(work: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{work / 'omni.db'}",
        mlflow_tracking_uri=f"sqlite:///{work / 'mlruns' / 'mlflow.db'}",
        mlflow_artifact_root=work / "mlruns" / "artifacts",
        api_keys={KEY: ApiKey(name="bench", scopes=list(SCOPES))},
    )


def build(work: Path, customers: int, items: int) -> tuple[Settings, dict[str, float]]:
    """A store in `work`: synthetic data ingested, ALS and churn registered as champion."""
    done = work / "timings.json"
    if done.exists():  # built before (--reuse): the same store, the same models
        return settings_for(work), json.loads(done.read_text())
    settings = settings_for(work)
    timings = {}
    started = time.perf_counter()
    write_synthetic(SyntheticConfig(customers=customers, items=items, seed=3), work / "data")
    timings["generate s"] = time.perf_counter() - started
    engine = open_engine(settings.database_url)
    started = time.perf_counter()
    sources = read_folder(work / "data")
    reference = [s for s in sources if s.table != "events"]
    ingest(engine, reference)
    for shard in (s for s in sources if s.table == "events"):
        ingest(engine, [shard])
    del sources, reference
    timings["ingest s"] = time.perf_counter() - started
    started = time.perf_counter()
    events = load_events(engine)
    as_of = events[c.TS].max() + pd.Timedelta(seconds=1)
    matrix = build_matrix(
        interactions(events, as_of=as_of),
        as_of=as_of,
        catalogue=load_table(engine, "catalogue"),
        stores=store_activity(events, as_of=as_of),
    )
    timings["events"] = len(events)
    del events
    model = ALS(random_state=0).fit(matrix)
    timings["fit ALS s"] = time.perf_counter() - started
    client = setup(settings, RECOMMENDER)
    with mlflow.start_run(run_name="api load benchmark"):
        version = log_recommender(model, client)
    promote(client, RECOMMENDER, "champion", version)
    started = time.perf_counter()
    report = train_churn(engine, settings)
    timings["train churn s"] = time.perf_counter() - started
    promote(setup(settings, CHURN), CHURN, "champion", report.version)
    engine.dispose()
    done.write_text(json.dumps(timings))
    return settings, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--reuse", type=Path, help="A folder a previous run built (skips building the store)."
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "api_load.md")
    args = parser.parse_args()
    work = args.reuse or Path(tempfile.mkdtemp(prefix="omni-load-"))
    print(f"building the store in {work}", flush=True)
    settings, timings = build(work, args.customers, args.items)
    print(timings, flush=True)
    env = {
        **os.environ,
        "OMNI_DATABASE_URL": settings.database_url,
        "OMNI_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "OMNI_MLFLOW_ARTIFACT_ROOT": str(settings.mlflow_artifact_root),
        "OMNI_API_KEYS": json.dumps({k: v.model_dump() for k, v in settings.api_keys.items()}),
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    bin_dir = Path(sys.executable).parent
    known = pd.read_parquet(work / "data" / "customers.parquet")[c.CUSTOMER_ID].tolist()
    stores = pd.read_parquet(work / "data" / "stores.parquet")[c.STORE_ID].tolist()
    rng = random.Random(0)
    people = [rng.choice(known) for _ in range(200_000)]
    shops = [rng.choice(stores) for _ in range(200_000)]
    recs = [get(f"/v1/customers/{p}/recommendations?k=10", HEADERS) for p in people]
    local = [
        get(f"/v1/customers/{p}/recommendations?k=10&store_id={s}", HEADERS)
        for p, s in zip(people, shops, strict=True)
    ]
    churn = [get(f"/v1/customers/{p}/churn", HEADERS) for p in people[:20_000]]
    churn_batches = [
        post("/v1/churn/scores", {"customer_ids": people[i : i + 100]}, HEADERS)
        for i in range(0, 20_000, 100)
    ]
    day = pd.Timestamp.now(tz="UTC").isoformat()

    def events(i: int) -> bytes:
        batch = [
            {
                "event_id": f"load-{i}-{j}",
                "ts": day,
                # New customers: the recommendation cases above stay on trained ones.
                "customer_id": f"NEW{(i * 10 + j) % 50_000:06d}",
                "channel": "web",
                "type": "view",
                "item_id": f"I{(i * 10 + j) % args.items:06d}",
            }
            for j in range(10)
        ]
        return post("/v1/events", {"events": batch}, HEADERS)

    host, s = "127.0.0.1", args.seconds
    rows: dict[str, dict[str, float]] = {}
    cases = {
        "recommendations": lambda i: recs[i % len(recs)],
        "recommendations, store_id": lambda i: local[i % len(local)],
        "churn": lambda i: churn[i % len(churn)],
        "churn, 100 customers per request": lambda i: churn_batches[i % len(churn_batches)],
    }
    for workers in args.workers:
        port = free_port()
        omni = subprocess.Popen(
            [str(bin_dir / "omni"), "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(work / f"omni-{workers}.log").open("w"),
        )
        try:
            timings[f"omni x{workers} ready s"] = wait_for(f"http://{host}:{port}/ready", omni)
            time.sleep(15)  # the service reads every store's stock in the background first
            label = f"omni, {workers} worker{'s' if workers > 1 else ''}"
            for name, make in cases.items():
                closed_loop(host, port, make, seconds=2)  # warm up
                rows[f"{label}: {name}, max"] = closed_loop(host, port, make, seconds=s).row()
                print(label, name, rows[f"{label}: {name}, max"], flush=True)
            for name in ("recommendations", "recommendations, store_id"):
                key = f"{label}: {name}, {args.rate:g}/s"
                rows[key] = open_loop(host, port, cases[name], rate=args.rate, seconds=s).row()
                print(key, rows[key], flush=True)
            # Last: posting events makes their customers' next answers fold them in.
            key = f"{label}: events (10 per request), max"
            rows[key] = closed_loop(host, port, events, seconds=s).row()
            print(key, rows[key], flush=True)
        finally:
            omni.terminate()
            omni.wait(timeout=30)
    port = free_port()
    served = subprocess.Popen(
        [str(bin_dir / "mlflow"), "models", "serve", "-m", f"models:/{RECOMMENDER}@champion",
         "--env-manager", "local", "--host", host, "--port", str(port),
         "--workers", str(max(args.workers))],
        env=env, stdout=subprocess.DEVNULL, stderr=(work / "mlflow.log").open("w"),
    )  # fmt: skip
    try:
        timings["mlflow ready s"] = wait_for(f"http://{host}:{port}/ping", served)
        invocations = [
            post(
                "/invocations",
                {
                    "dataframe_split": {"columns": ["customer_id"], "data": [[p]]},
                    "params": {"k": 10},
                },
                {},
            )
            for p in people[:20_000]
        ]

        def invoke(i: int) -> bytes:
            return invocations[i % len(invocations)]

        closed_loop(host, port, invoke, seconds=2)
        rows[f"mlflow models serve, {max(args.workers)} workers: recommendations, max"] = (
            closed_loop(host, port, invoke, seconds=s).row()
        )
        print(
            "mlflow",
            rows[f"mlflow models serve, {max(args.workers)} workers: recommendations, max"],
            flush=True,
        )
    finally:
        served.terminate()
        served.wait(timeout=30)
    table = pd.DataFrame(rows).T
    lines = [
        "# API load",
        "",
        f"`.venv/bin/python benchmarks/api_load.py`: {os.cpu_count()} cores (server and load "
        f"generator share them), Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}. "
        f"{args.customers:,} synthetic customers, {args.items:,} items, "
        f"{int(timings['events']):,} events in SQLite; ALS registered as champion; "
        f"`omni serve --workers N`. `max`: 8 connections, each sending its next request when the "
        f"last answers, {s:g} s; `{args.rate:g}/s`: requests due at a fixed rate over 64 "
        "connections, latency from when each was due.",
        "",
        "| case | requests/s | p50 ms | p99 ms | errors |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, row in table.iterrows():
        lines.append(
            f"| {name} | {row['requests/s']:,.0f} | {row['p50 ms']} | {row['p99 ms']} | "
            f"{int(row['errors'])} |"
        )
    lines += ["", "Set-up: " + ", ".join(f"{k} {v:,.1f}" for k, v in timings.items())]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
