"""The online layer under load: every endpoint a channel calls, on a store that exists.

    .venv/bin/python benchmarks/online_load.py                  # the store `make run` built
    .venv/bin/python benchmarks/online_load.py --workers 1 2 --seconds 15
    .venv/bin/python benchmarks/online_load.py --build /tmp/omni-100k --customers 100000
    OMNI_DATABASE_URL=postgresql+psycopg://... .venv/bin/python benchmarks/online_load.py

Reads the store and registry from the OMNI_* settings (data/omni.db and mlruns/ by
default). A SQLite store is copied first, so that the offers decided and the events
posted under load do not stay in it. Starts `omni serve --replay` on a free local port
with a benchmark key and drives it with benchmarks/loadgen.py: 8 connections (or
--connections), opened 20 ms apart so that every worker process takes some, each
sending its next request when the last answers (--cases picks some by name). Cases:
recommendations, one event per request, 100 events per request, churn, profile,
next-best offer asked again (the decision stands) and asked first (each request a
customer never asked on this store, each once: the case ends when they run out, its rate
over the time it ran). Results:
benchmarks/results/online_load.md (appended, one table per run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO

from api_load import build, free_port, wait_for
from loadgen import MakeRequest, closed_loop, get, post
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from service.registry import RECOMMENDER
from service.settings import SCOPES, ApiKey, Settings
from service.storage.codec import moment
from service.storage.engine import open_engine
from service.storage.tables import catalogue, customers, decisions, events, no_offers

ROOT = Path(__file__).resolve().parents[1]
KEY = "online-bench-key"
HEADERS = {"X-API-Key": KEY}
BENCH_KEY = ApiKey(name="bench", scopes=list(SCOPES))


def _copy_if_sqlite(url: str, into: Path) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return url
    target = into / "omni.db"
    shutil.copyfile(parsed.database, target)
    for suffix in ("-wal", "-shm"):
        if Path(parsed.database + suffix).exists():
            shutil.copyfile(parsed.database + suffix, str(target) + suffix)
    return f"sqlite:///{target}"


def _population(url: str) -> tuple[list[str], list[str], str, str]:
    """The customers, the items, the time of the last stored event (ISO) and a store."""
    engine = open_engine(url)
    with engine.connect() as conn:
        people = sorted(conn.execute(select(customers.c.customer_id)).scalars())
        items = sorted(conn.execute(select(catalogue.c.item_id)).scalars())
        last = moment(int(conn.execute(select(func.max(events.c.ts))).scalar_one()))
        store = conn.execute(
            select(events.c.store_id).where(events.c.store_id.is_not(None)).limit(1)
        )
        store_id = str(store.scalar_one())
    engine.dispose()
    return people, items, last.isoformat(), store_id


def _asked(url: str) -> set[str]:
    """The customers asked for an offer before (a decision of theirs, or a "nothing open"
    mark): on a store that keeps what earlier runs did (PostgreSQL), their next ask is
    not a first one."""
    engine = open_engine(url)
    with engine.connect() as conn:
        decided = conn.execute(select(decisions.c.customer_id).distinct()).scalars()
        marked = conn.execute(select(no_offers.c.person_id).distinct()).scalars()
        asked = {str(who) for who in [*decided, *marked] if who is not None}
    engine.dispose()
    return asked


#: At most this long to decide the "decision standing" case's customers before it.
DECIDING_SECONDS = 60.0


def STANDING(people: list[str]) -> list[str]:
    """The customers asked for an offer before the "decision standing" case."""
    return people[:200]


def _nbo(persons: list[str], rng: random.Random | None = None) -> MakeRequest:
    """Asks for an offer: of random ones of `persons` with `rng`, else of each in turn
    once (then no more: each ask is the person's first)."""

    def make(i: int) -> bytes | None:
        if rng is None and i >= len(persons):
            return None
        who = persons[rng.randrange(len(persons))] if rng else persons[i]
        return get(f"/v1/customers/{who}/next-best-offer?channel=web", HEADERS)

    return make


def _cases(
    people: list[str],
    items: list[str],
    store_id: str,
    ts: str,
    rng: random.Random,
    asked: set[str],
) -> dict[str, MakeRequest]:
    """Each case's request maker (request i of the case), in the order they run.

    The customers are split: the events posted under load go to the last tenth ("active
    now"); the read cases before them ask the others, whose batch answers stand; the cases
    after them ask the active ones, whose answers must fold in what they just did. The
    events carry the time of the store's last event (`ts`: they arrive late), so that the
    clock a replayed store is served at stays where it was for the next run on a store
    that keeps them (PostgreSQL), and the batch answers stay recent enough to serve.
    """
    run = uuid.uuid4().hex[:8]
    active = people[-max(len(people) // 10, 1) :]
    quiet = people[: len(people) - len(active)]

    def event(i: int) -> dict[str, object]:
        who, item = active[i % len(active)], items[(i * 7) % len(items)]
        return {"event_id": f"bench-{run}-{i}", "ts": ts, "customer_id": who,
                "channel": "web", "type": "view", "item_id": item}  # fmt: skip

    def path(among: list[str], route: str, query: str = "") -> MakeRequest:
        return lambda i: get(
            f"/v1/customers/{among[rng.randrange(len(among))]}/{route}{query}", HEADERS
        )

    # Never asked (`asked`: by an earlier run on this store): each ask decides.
    first_ask = [who for who in quiet[len(quiet) // 2 :] if who not in asked]
    rng.shuffle(first_ask)
    return {
        "recommendations k=10": path(quiet, "recommendations", "?k=10"),
        "recommendations k=10, store_id": path(
            quiet, "recommendations", f"?k=10&store_id={store_id}"
        ),
        "churn": path(quiet, "churn"),
        "profile": path(quiet, "profile"),
        "next-best offer, first ask": _nbo(first_ask),
        "next-best offer, decision standing": _nbo(STANDING(quiet), rng),
        "events, 1 per request": lambda i: post("/v1/events", {"events": [event(i)]}, HEADERS),
        "events, 100 per request": lambda i: post(
            "/v1/events", {"events": [event(10**7 + i * 100 + j) for j in range(100)]}, HEADERS
        ),
        "recommendations k=10, customer with new events": path(active, "recommendations", "?k=10"),
        "churn, customer with new events": path(active, "churn"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--label", default="", help="Named in the results (e.g. the store).")
    parser.add_argument(
        "--cases",
        nargs="+",
        metavar="WORD",
        help="Only the cases whose name holds one of these words (e.g. churn profile).",
    )
    parser.add_argument("--connections", type=int, default=8, help="Kept open by the generator.")
    parser.add_argument(
        "--build",
        type=Path,
        help="Build (or reuse) a synthetic store in this folder, as benchmarks/api_load.py does, "
        "and measure it instead of the OMNI_* store.",
    )
    parser.add_argument("--customers", type=int, default=100_000, help="With --build.")
    parser.add_argument("--build-only", action="store_true", help="Build the store and stop.")
    parser.add_argument(
        "--mlflow",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Also measure the same champion recommender under `mlflow models serve`.",
    )
    args = parser.parse_args()
    settings = Settings()
    if args.build is not None:
        settings, _ = build(args.build, args.customers, 20_000)
        if args.build_only:
            return
    work = Path(tempfile.mkdtemp(prefix="omni-online-"))
    host = "127.0.0.1"
    rows: dict[str, dict[str, float]] = {}
    people, items, last_ts, store_id = _population(settings.database_url)
    rng = random.Random(7)
    for workers in args.workers:
        url = _copy_if_sqlite(settings.database_url, work)
        port = free_port()
        server, log = start_serving(settings, url, port, workers, work / f"serve-{workers}.log")
        label = f"{workers} worker{'s' if workers > 1 else ''}"
        try:
            wait_for(f"http://{host}:{port}/ready", server)
            cases = _cases(people, items, store_id, last_ts, rng, _asked(url))
            # Unmeasured: the service reads the stores' stock in the background at start.
            closed_loop(host, port, cases["recommendations k=10"], seconds=5, conns=8)
            if args.cases:
                cases = {n: m for n, m in cases.items() if any(w in n for w in args.cases)}
            for name, make in cases.items():
                if name == "next-best offer, first ask" and make(0) is None:
                    print(f"{label}: {name}: every customer was asked before: skipped")
                    continue
                if name == "next-best offer, decision standing":  # decide them first
                    standing = STANDING(people[: len(people) - max(len(people) // 10, 1)])
                    # Each asked once: the loop ends when all are (the time is a bound).
                    closed_loop(host, port, _nbo(standing), seconds=DECIDING_SECONDS)
                cpu = server_cpu(server.pid)
                result = closed_loop(host, port, make, seconds=args.seconds, conns=args.connections)
                row = result.row()
                spent = server_cpu(server.pid) - cpu
                row["server CPU ms/req"] = round(spent * 1000 / max(result.requests, 1), 2)
                if name.startswith("events, 100"):
                    row["events/s"] = round(result.rate * 100, 1)
                rows[f"{label}: {name}"] = row
                print(f"{label}: {name}: {row}", flush=True)
        finally:
            server.terminate()
            server.wait(timeout=60)
            log.close()
    if args.mlflow:
        quiet = people[: len(people) - max(len(people) // 10, 1)]
        for workers in args.workers:
            label = f"mlflow models serve, {workers} worker{'s' if workers > 1 else ''}"
            rows[f"{label}: recommendations k=10"] = _mlflow_serve(
                settings, work, workers, quiet, rng, args.seconds, args.connections
            )
            print(f"{label}: {rows[f'{label}: recommendations k=10']}", flush=True)
    _write(rows, args, settings, len(people))
    shutil.rmtree(work, ignore_errors=True)


def server_cpu(pid: int) -> float:
    """CPU seconds (user and system) the server and its worker processes have used so far
    (Linux /proc; 0 elsewhere). Per request, it tells a change in Omni's own work apart
    from a machine whose speed varies between runs (another tenant's load on the cores
    slows both, but leaves the work a request takes nearly as it was)."""
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that ended meanwhile
        child = int(stat.parent.name)
        parent[child] = int(fields[1])
        used[child] = (int(fields[11]) + int(fields[12])) / tick
    tree, grew = {pid}, True
    while grew:
        more = {child for child, up in parent.items() if up in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(used.get(p, 0.0) for p in tree)


def start_serving(
    settings: Settings, url: str, port: int, workers: int, log_path: Path
) -> tuple[subprocess.Popen[bytes], IO[str]]:
    """`omni serve --replay` on `url` with the benchmark key, its output in `log_path`."""
    env = {
        **os.environ,
        "OMNI_DATABASE_URL": url,
        "OMNI_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "OMNI_MLFLOW_ARTIFACT_ROOT": str(settings.mlflow_artifact_root),
        "OMNI_API_KEYS": json.dumps({KEY: BENCH_KEY.model_dump()}),
    }
    omni = str(Path(sys.executable).with_name("omni"))
    command = [omni, "serve", "--replay", "--no-access-log", "--port", str(port),
               "--workers", str(workers)]  # fmt: skip
    log = log_path.open("w")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log), log


def _mlflow_serve(
    settings: Settings,
    work: Path,
    workers: int,
    people: list[str],
    rng: random.Random,
    seconds: float,
    connections: int,
) -> dict[str, float]:
    """The champion recommender under `mlflow models serve` (its pyfunc, the same
    artifact), one customer per request as the API is asked: requests/s and latency."""
    port = free_port()
    venv = str(Path(sys.executable).parent)  # its scoring server runs `uvicorn` from PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
           "PATH": f"{venv}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    command = [mlflow, "models", "serve", "-m", f"models:/{RECOMMENDER}@champion",
               "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers)]  # fmt: skip
    log = (work / f"mlflow-{workers}.log").open("w")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        wait_for(f"http://127.0.0.1:{port}/ping", server)

        def ask(i: int) -> bytes:
            who = people[rng.randrange(len(people))]
            body = {"dataframe_records": [{"customer_id": who}], "params": {"k": 10}}
            return post("/invocations", body, {})

        return closed_loop("127.0.0.1", port, ask, seconds=seconds, conns=connections).row()
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


def _write(
    rows: dict[str, dict[str, float]], args: argparse.Namespace, settings: Settings, n: int
) -> None:
    backend = make_url(settings.database_url).get_backend_name()
    head = (
        f"\n## {args.label or 'store'}: {n:,} customers, {backend}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
        f"`.venv/bin/python benchmarks/online_load.py --workers {' '.join(map(str, args.workers))}"
        f" --seconds {args.seconds:g}`: {os.cpu_count()} cores shared by server and load "
        "generator, "
        f"Python {platform.python_version()}, {_versions()}; {args.connections} connections, "
        "closed loop.\n\n"
        "| case | requests/s | p50 ms | p99 ms | errors | events/s | server CPU ms/req |\n"
        "| --- | --- | --- | --- | --- | --- | --- |\n"
    )
    columns = ("requests/s", "p50 ms", "p99 ms", "errors", "events/s", "server CPU ms/req")
    lines = [
        "| " + " | ".join([name, *(str(r.get(col, "")) for col in columns)]) + " |"
        for name, r in rows.items()
    ]
    append_results("online_load.md", "Online layer under load", head + "\n".join(lines))


def _versions() -> str:
    """The versions of what serves the requests on both sides (a newer MLflow scoring
    server or FastAPI moves the figures and the ratio between them)."""
    names = ("fastapi", "uvicorn", "mlflow")
    return ", ".join(f"{name} {metadata.version(name)}" for name in names)


def append_results(name: str, title: str, text: str) -> None:
    """Append one run's `text` to benchmarks/results/`name` (made with `title`) and print it."""
    out = ROOT / "benchmarks" / "results" / name
    if not out.exists():
        out.write_text(f"# {title}\n\nOne table per run, newest last.\n")
    with out.open("a") as handle:
        handle.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
