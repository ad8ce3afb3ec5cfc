"""The batch layer at volume: wall time and peak memory of every batch command.

    .venv/bin/python benchmarks/scale.py --customers 10000 50000 200000
    .venv/bin/python benchmarks/scale.py --customers 10000 50000 200000 --engine spark

For each size: `omni generate` (seed 1), `omni ingest` into a fresh SQLite store, then
each batch command as its own process, as a user runs it: `omni train recommender`,
`omni train churn`, `omni score churn` (the whole population), `omni export offers`
(every reachable customer), with the models promoted in between (`--force`: the gate is
not what is timed). Peak memory is the command's own maximum resident set (from
`wait4`), wall time its elapsed seconds. Stores are kept under `--work` and reused when
present (`--fresh` to rebuild). Results go to benchmarks/results/scale.md. With
`--engine spark`: the store exported to a lake (`omni export events --format parquet`),
then `omni train recommender`, `omni train churn`, `omni score churn` and `omni export
offers` (on a copy of the store with the ledgers emptied) on Spark local[2] from it
(results in benchmarks/results/scale-spark.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine, func, select

from service.storage.tables import events
from training.tracking import comparison_markdown

ROOT = Path(__file__).resolve().parents[1]
OMNI = str(Path(sys.executable).with_name("omni"))
#: The synthetic history ends on 30 September 2026: batch commands run the day after.
CLOCK = "2026-10-01T12:00:00+00:00"
AS_OF = "2026-10-01"


@dataclass(frozen=True)
class Timed:
    seconds: float
    peak_mib: float
    ok: bool


def timed(args: list[str], env: dict[str, str], log: Path) -> Timed:
    """Run one command, its output to `log`; its wall time and peak resident memory: the
    larger of its own peak (`wait4`) and the peak sum over it and its descendants,
    sampled every 0.2 s (a Spark command's JVM is a descendant)."""
    started = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(args)}\n")
        out.flush()
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        peak = [0]
        done = threading.Event()
        sampler = threading.Thread(target=_sample_tree, args=(proc.pid, peak, done), daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    peak_mib = max(usage.ru_maxrss / 1024, peak[0] / 1024)
    return Timed(seconds, peak_mib, proc.returncode == 0)


def _sample_tree(root: int, peak: list[int], done: threading.Event) -> None:
    """Keep in `peak[0]` the largest sum of resident KiB over `root` and its descendants
    (read from /proc) until `done`."""
    while not done.wait(0.2):
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(stat.parent.name)] = int(fields[1])
        tree, grown = {root}, True
        while grown:
            more = {pid for pid, parent in parents.items() if parent in tree} - tree
            tree, grown = tree | more, bool(more)
        total = 0
        for pid in tree:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        peak[0] = max(peak[0], total)


def build(n: int, work: Path, env: dict[str, str], log: Path, fresh: bool) -> Path:
    """The store of `n` synthetic customers (generated and ingested when missing)."""
    db = work / f"omni-{n}.db"
    if fresh:
        for path in (db, work / f"data-{n}", work / f"mlruns-{n}"):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(True)
    if not db.exists():
        data = work / f"data-{n}"
        ok = timed([OMNI, "generate", "-n", str(n), "--seed", "1", "--out", str(data)], env, log)
        ok = ok.ok and timed([OMNI, "ingest", str(data), "--database-url", url(db)], env, log).ok
        if not ok:
            db.unlink(missing_ok=True)
            raise SystemExit(f"could not build the {n:,}-customer store: see {log}")
    return db


def url(db: Path) -> str:
    return f"sqlite:///{db}"


def run_size(n: int, work: Path, fresh: bool, engine: str = "embedded") -> dict[str, object]:
    log = work / f"scale-{n}.log"
    mlruns = work / f"mlruns-{n}"
    env = {
        **os.environ,
        "OMNI_MLFLOW_TRACKING_URI": f"sqlite:///{mlruns}/mlflow.db",
        "OMNI_MLFLOW_ARTIFACT_ROOT": str(mlruns / "artifacts"),
        "OMNI_CLOCK": CLOCK,
        "OMNI_DATABASE_URL": "",
    }
    mlruns.mkdir(parents=True, exist_ok=True)
    db = build(n, work, env, log, fresh)
    with create_engine(url(db)).connect() as conn:
        n_events = conn.execute(select(func.count()).select_from(events)).scalar_one()
    store = ["--database-url", url(db)]
    if engine == "spark":
        return run_spark(n, n_events, work, store, env | {"OMNI_DATABASE_URL": url(db)}, log)
    steps = {
        "train recommender": [OMNI, "train", "recommender", *store],
        "promote recommender": [OMNI, "promote", "recommender", "--force"],
        "train churn": [OMNI, "train", "churn", *store],
        "promote churn": [OMNI, "promote", "churn", "--force"],
        "score churn": [
            OMNI, "score", "churn", "--as-of", AS_OF, "--output", str(work / f"churn-{n}.csv"),
            *store,
        ],
        "export offers": [
            OMNI, "export", "offers", "--channel", "email",
            "--output", str(work / f"offers-{n}.csv"), *store,
        ],
    }  # fmt: skip
    row: dict[str, object] = {"customers": n, "events": n_events}
    for name, args in steps.items():
        result = timed(args, env | {"OMNI_DATABASE_URL": url(db)}, log)
        print(f"{n:>8,} {name:<20} {result.seconds:8.1f} s {result.peak_mib:8.0f} MiB"
              f"{'' if result.ok else '  FAILED (see ' + str(log) + ')'}", flush=True)  # fmt: skip
        if name.startswith("promote"):
            continue
        row[f"{name} s"] = round(result.seconds, 1) if result.ok else float("nan")
        row[f"{name} MiB"] = round(result.peak_mib) if result.ok else float("nan")
    return row


def run_spark(
    n: int, n_events: int, work: Path, store: list[str], env: dict[str, str], log: Path
) -> dict[str, object]:
    """The commands that run on Spark (local mode), from a lake written first; the churn
    model scored is the champion (promoted by the embedded run at this size)."""
    lake = work / f"lake-{n}"
    shutil.rmtree(lake, ignore_errors=True)
    spark = ["--engine", "spark", "--lake", str(lake)]
    steps = {
        "export lake": [
            OMNI, "export", "events", "--format", "parquet", "--output", str(lake), *store,
        ],
        "train recommender": [OMNI, "train", "recommender", *spark, *store],
        "train churn": [OMNI, "train", "churn", *spark, *store],
        "score churn": [
            OMNI, "score", "churn", "--as-of", AS_OF,
            "--output", str(work / f"churn-spark-{n}.csv"), *spark, *store,
        ],
    }  # fmt: skip
    # Tonight's offers decided again from the same ledgers as the embedded run's: on a copy
    # of the store with its decisions and contacts emptied.
    twin = work / f"omni-{n}-spark.db"
    with sqlite3.connect(work / f"omni-{n}.db") as src, sqlite3.connect(twin) as dst:
        src.backup(dst)
        for table in ("contacts", "decisions"):
            dst.execute(f"DELETE FROM {table}")
    steps["export offers"] = [
        OMNI, "export", "offers", "--channel", "email", *spark, "--output",
        str(work / f"offers-spark-{n}.csv"), "--database-url", url(twin),
    ]  # fmt: skip
    row: dict[str, object] = {"customers": n, "events": n_events, "engine": "spark"}
    for name, args in steps.items():
        result = timed(args, env, log)
        print(f"{n:>8,} {name:<20} {result.seconds:8.1f} s {result.peak_mib:8.0f} MiB (spark)"
              f"{'' if result.ok else '  FAILED (see ' + str(log) + ')'}", flush=True)  # fmt: skip
        row[f"{name} s"] = round(result.seconds, 1) if result.ok else float("nan")
        row[f"{name} MiB"] = round(result.peak_mib) if result.ok else float("nan")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/omni-scale"))
    parser.add_argument("--fresh", action="store_true", help="rebuild the stores")
    parser.add_argument(
        "--engine",
        choices=["embedded", "spark"],
        default="embedded",
        help="spark: export the lake, then train and score churn on Spark local[2] (the "
        "embedded engine's models must have been trained at that size first)",
    )
    parser.add_argument(
        "--out", type=Path, help="default: benchmarks/results/scale.md (scale-spark.md)"
    )
    args = parser.parse_args()
    suffix = "-spark" if args.engine == "spark" else ""
    args.out = args.out or ROOT / f"benchmarks/results/scale{suffix}.md"
    args.work.mkdir(parents=True, exist_ok=True)
    rows = [run_size(n, args.work, args.fresh, args.engine) for n in args.customers]
    table = pd.DataFrame(rows)
    text = (
        "# Batch commands at volume\n\n"
        f"`.venv/bin/python benchmarks/scale.py --customers "
        f"{' '.join(str(n) for n in args.customers)}` on {platform.node()} "
        f"({os.cpu_count()} cores), {time.strftime('%Y-%m-%d')}; SQLite store, "
        f"{args.engine} engine. Seconds of wall time and peak resident memory (MiB) of "
        "each command and its descendants (with Spark: the command and its JVM together,"
        " sampled every 0.2 s).\n\n"
        + comparison_markdown(table.set_index("customers"), list(table.columns[1:]))
        + "\n"
    )
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
