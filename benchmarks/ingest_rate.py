"""Ingest rate: 1M synthetic events and the Complete Journey transactions, SQLite and PostgreSQL.

    .venv/bin/python benchmarks/ingest_rate.py            # or: make bench

Each case loads into an empty store (a fresh SQLite file, or a fresh PostgreSQL schema),
timing the whole `omni ingest` path: validation, the write in one transaction, identity
stitching. It then loads the same files again (every event a duplicate) to time the
idempotent re-send. Results go to benchmarks/results/ingest.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from multiprocessing import get_context
from pathlib import Path

import psycopg

from features.sources.completejourney import read_completejourney
from features.sources.files import read_folder
from features.sources.frame import SourceFrame
from features.synthetic import SyntheticConfig, write_synthetic
from service.storage.engine import open_engine, temporary_schema
from service.storage.reader import load_events
from training.ingest import ingest

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def sqlite_store() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{tmp}/omni.db"


def postgres_answers(url: str) -> bool:
    try:
        psycopg.connect(url.replace("+psycopg", ""), connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def read_sources(dataset: str, path: Path) -> list[SourceFrame]:
    if dataset == "completejourney":
        return read_completejourney(path)
    return read_folder(path)


def run_case(url: str, dataset: str, path: Path) -> dict[str, float]:
    """One case, meant to run in its own process so its peak memory is its own."""
    started = time.perf_counter()
    sources = read_sources(dataset, path)
    read_s = time.perf_counter() - started
    events = sum(len(s.frame) for s in sources if s.table == "events")
    engine = open_engine(url)
    try:
        first = ingest(engine, sources)
        again = ingest(engine, sources)
        started = time.perf_counter()
        loaded = len(load_events(engine))
        load_s = time.perf_counter() - started
    finally:
        engine.dispose()
    stored = next(a.stored for a in first.applied if a.table == "events")
    dupes = next(a.duplicates for a in again.applied if a.table == "events")
    assert stored == events == dupes == loaded, (stored, dupes, loaded, events)
    return {
        "events": events,
        "read_s": read_s,
        "ingest_s": first.seconds,
        "again_s": again.seconds,
        "load_s": load_s,
        # ru_maxrss is in KiB on Linux.
        "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def in_child(url: str, dataset: str, path: Path) -> dict[str, float]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(run_case, url, dataset, path).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=14_600, help="synthetic size (~1M events)")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument(
        "--completejourney", type=Path, default=ROOT.parent / "shared" / "data" / "completejourney"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ingest.md")
    args = parser.parse_args()

    synthetic_dir = Path(tempfile.mkdtemp()) / "synthetic"
    write_synthetic(SyntheticConfig(customers=args.customers, seed=1), synthetic_dir)
    datasets = [("synthetic", synthetic_dir)]
    if args.completejourney.is_dir():
        datasets.append(("completejourney", args.completejourney))
    stores: list[tuple[str, Callable[[], AbstractContextManager[str]]]] = [("SQLite", sqlite_store)]
    if postgres_answers(args.postgres_url):
        stores.append(("PostgreSQL", lambda: temporary_schema(args.postgres_url, "omni_bench")))
    rows = []
    for name, path in datasets:
        for db, store in stores:
            with store() as url:
                result = in_child(url, name, path)
            rate = result["events"] / result["ingest_s"]
            rows.append(
                f"| {name} | {db} | {result['events']:,.0f} | {result['read_s']:.1f} | "
                f"{result['ingest_s']:.1f} | {rate:,.0f} | {result['again_s']:.1f} | "
                f"{result['load_s']:.1f} | {result['peak_gib']:.1f} |"
            )
            print(rows[-1], flush=True)
    header = [
        "# Ingest rate",
        "",
        f"`.venv/bin/python benchmarks/ingest_rate.py`: {os.cpu_count()} cores, "
        f"{platform.machine()}, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}. "
        "One run on a shared machine: read ratios, not decimals.",
        "",
        "ingest = validate + write in one transaction + identity stitching (all tables; rate "
        "counts events). again = the same files re-sent: every event skipped as a duplicate. "
        "read back = every event loaded for training (chunked, identity-resolved). "
        "peak = the case's peak resident memory (its own process; files are held in memory).",
        "",
        "| data | database | events | file read s | ingest s | events/s | again s "
        "| read back s | peak GiB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join([*header, *rows, ""]))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
