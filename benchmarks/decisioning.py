"""Decisioning at scale: triggers and next-best offers for 100k customers, and the
next-best-offer route under load.

    .venv/bin/python benchmarks/decisioning.py [--reuse DIR]

Builds (or reuses) the store of benchmarks/api_load.py: 100,000 synthetic customers,
20,000 items, ALS and churn as champion. The clock is set to noon the day after the last
event. Measures, in process: the abandoned-cart pull for every due cart (push and
e-mail), and the next-best offer of every customer in one batch (`decide_all`, what
`omni export offers` runs). Then starts `omni serve --workers 2` and measures
`GET /v1/customers/{id}/next-best-offer`: first asks (each makes and records a
decision) and asks again (the decision stands). Results:
benchmarks/results/decisioning.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from api_load import HEADERS, build, free_port, wait_for
from loadgen import closed_loop, get, open_loop
from sqlalchemy import delete

from features import columns as c
from service.decisioning.nbo_batch import decide_all
from service.decisioning.offers import Where
from service.decisioning.triggers import pull
from service.serving import ModelHolder
from service.shelf import Shelf
from service.storage.engine import open_engine
from service.storage.tables import contacts, decisions, triggers

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--reuse", type=Path, help="A folder api_load.py or this script built.")
    parser.add_argument("--http-only", action="store_true", help="Skip the batch cases.")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "decisioning.md"
    )
    args = parser.parse_args()
    work = args.reuse or Path(tempfile.mkdtemp(prefix="omni-decisioning-"))
    print(f"store in {work}", flush=True)
    settings, timings = build(work, args.customers, args.items)
    engine = open_engine(settings.database_url)
    with engine.begin() as conn:  # a reused store starts with empty ledgers
        for ledger in (decisions, contacts, triggers):
            conn.execute(delete(ledger))
        last = conn.exec_driver_sql("SELECT max(ts) FROM events").scalar()
    noon = (pd.Timestamp(int(last), unit="us", tz="UTC") + pd.Timedelta(days=1)).floor("D")
    noon += pd.Timedelta(hours=12)
    settings = settings.model_copy(update={"clock": noon.to_pydatetime()})
    now = settings.now()
    rows: dict[str, str] = {}

    # -- served over HTTP first: first asks decide, second asks reuse -------------------
    known = pd.read_parquet(work / "data" / "customers.parquet")[c.CUSTOMER_ID].tolist()
    rng = random.Random(1)
    people = rng.sample(known, min(len(known), 20_000))
    asks = [get(f"/v1/customers/{p}/next-best-offer?channel=web", HEADERS) for p in people]
    env = {
        **os.environ,
        "OMNI_DATABASE_URL": settings.database_url,
        "OMNI_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "OMNI_MLFLOW_ARTIFACT_ROOT": str(settings.mlflow_artifact_root),
        "OMNI_API_KEYS": json.dumps({k: v.model_dump() for k, v in settings.api_keys.items()}),
        "OMNI_CLOCK": now.isoformat(),
    }
    port, host = free_port(), "127.0.0.1"
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "omni"), "serve", "--port", str(port), "--workers", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=(work / "omni-nbo.log").open("w"),
    )  # fmt: skip
    try:
        wait_for(f"http://{host}:{port}/ready", server)
        time.sleep(15)  # stock and sales read in the background first
        served_first = closed_loop(host, port, lambda i: asks[i % len(asks)], seconds=args.seconds)
        asked = max(1, len(served_first.latencies))
        again = closed_loop(host, port, lambda i: asks[i % asked], seconds=args.seconds)
        # At a steady rate (requests due on a clock, latency from when each was due).
        fresh = people[asked:]
        steady_first = open_loop(
            host, port, lambda i: asks[asked + i % len(fresh)], rate=5, seconds=args.seconds
        )
        steady_again = open_loop(
            host, port, lambda i: asks[i % asked], rate=50, seconds=args.seconds
        )
        rows["next-best offer, first ask (decides and records), 8 connections"] = _fmt(
            served_first.row()
        )
        rows["next-best offer, asked again (the decision stands), 8 connections"] = _fmt(
            again.row()
        )
        rows["next-best offer, first ask, 5 requests/s"] = _fmt(steady_first.row())
        rows["next-best offer, asked again, 50 requests/s"] = _fmt(steady_again.row())
    finally:
        server.terminate()
        server.wait(timeout=30)

    # -- batch, in process -------------------------------------------------------------
    if args.http_only:
        _write(args.out, rows, timings, now.isoformat(), args)
        return
    holder = ModelHolder(settings)
    started = time.perf_counter()
    holder.reload()
    rows["load models (and warm every customer's top 100)"] = (
        f"{time.perf_counter() - started:.1f} s"
    )
    served, shelf = holder.current, Shelf(engine, 3600)
    for channel in ("push", "email"):
        started = time.perf_counter()
        page = pull(engine, served, shelf, settings, channel, now, limit=None)
        took = time.perf_counter() - started
        rows[f"abandoned-cart pull, {channel}, every due cart"] = (
            f"{took:.1f} s, {len(page.triggers):,} triggers handed out"
        )
        print(channel, rows[f"abandoned-cart pull, {channel}, every due cart"], flush=True)
    with engine.connect() as conn:
        ids = pd.read_sql("SELECT DISTINCT person_id FROM identities", conn)["person_id"]
    customers = pd.Series(ids.to_numpy(), index=ids.to_numpy())
    started = time.perf_counter()
    decided = decide_all(engine, served, shelf, settings, customers, Where("web"), now)
    took = time.perf_counter() - started
    rows[f"next-best offer for {len(customers):,} persons in one batch"] = (
        f"{took:.1f} s, {len(decided):,} offers, {int(decided['reused'].sum()):,} decisions kept"
    )
    print(rows, flush=True)
    engine.dispose()

    _write(args.out, rows, timings, now.isoformat(), args)


def _write(
    out: Path, rows: dict[str, str], timings: dict[str, float], clock: str, args: argparse.Namespace
) -> None:
    lines = [
        "# Decisioning",
        "",
        f"`.venv/bin/python benchmarks/decisioning.py`: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}. {args.customers:,} "
        f"synthetic customers, {args.items:,} items, {int(timings['events']):,} events in "
        f"SQLite; ALS and churn champions; clock {clock}. HTTP: `omni serve "
        f"--workers 2`, 8 connections each sending its next request when the last answers, "
        f"{args.seconds:g} s per case (the load generator shares the 2 cores).",
        "",
        "| what | result |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in rows.items()],
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _fmt(row: dict[str, float]) -> str:
    return (
        f"{row['requests/s']:,.0f} requests/s, p50 {row['p50 ms']} ms, p99 {row['p99 ms']} ms, "
        f"{int(row['errors'])} errors"
    )


if __name__ == "__main__":
    main()
