"""Per-request cost against the length of a customer's history.

    .venv/bin/python benchmarks/history_length.py               # the store `make run` built
    .venv/bin/python benchmarks/history_length.py --lengths 10 2000 --seconds 12 --rounds 3

On a copy of the OMNI_* store (SQLite is copied; another database is used as it is),
adds one new customer per length in --lengths, each with that many events over the
year before the replay clock (views, cart adds and purchases across the catalogue and
the channels), stored through the service's own intake after the models were trained:
every one of them is "fresh", so each answer is folded in from what they did, the case
whose cost used to grow with the history. Then starts `omni serve --replay` and drives
recommendations, churn, profile and the next-best offer (decision standing) for each
customer, 8 connections, closed loop. Results: benchmarks/results/history_length.md
(appended), with each case's slowest-to-fastest ratio across the lengths.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from api_load import free_port, wait_for
from loadgen import MakeRequest, closed_loop, get
from online_load import HEADERS, _copy_if_sqlite, _population, append_results, start_serving
from sqlalchemy.engine import make_url

from service.intake import accept_events
from service.settings import Settings
from service.storage import state
from service.storage.engine import open_engine
from training.cli_serve import replay_clock

ROOT = Path(__file__).resolve().parents[1]
KINDS = ["view"] * 6 + ["add_to_cart"] * 2 + ["purchase"]
CHANNELS = ["web", "app", "store"]
#: Events in one visit (a session on the web or in the app, a trip to the store).
SESSION = 10


def _history(
    who: str, n: int, items: list[str], store_id: str, clock: datetime, spread: bool
) -> list[dict[str, object]]:
    """`n` events of a new customer over the year before `clock`, oldest first, in visits
    of up to SESSION events in one channel on one day (with --spread, each event its own
    visit: the worst case for the day rows of the state)."""
    rng = random.Random(n)
    start = clock - timedelta(days=365)
    out = []
    visits = n if spread else max(n // SESSION, 1)
    for i in range(n):
        visit = i * visits // n
        channel = CHANNELS[(visit * 7 + (rng.randrange(3) if spread else 0)) % len(CHANNELS)]
        when = start + timedelta(days=365 * visit / visits, minutes=i % SESSION)
        out.append(
            {
                "event_id": f"history-{who}-{i}",
                "ts": when.isoformat(),
                "customer_id": who,
                "channel": channel,
                "type": KINDS[rng.randrange(len(KINDS))],
                "item_id": items[rng.randrange(len(items))],
                "price": 10.0,
                **({"store_id": store_id} if channel == "store" else {}),
            }
        )
    return out


def _always(request: bytes) -> MakeRequest:
    return lambda i: request


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--lengths", type=int, nargs="+", default=[10, 2000])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--rounds", type=int, default=3, help="Turns each length takes (its best is kept)."
    )
    parser.add_argument(
        "--spread", action="store_true", help="Every event its own visit (the worst case)."
    )
    args = parser.parse_args()
    settings = Settings()
    work = Path(tempfile.mkdtemp(prefix="omni-history-"))
    url = _copy_if_sqlite(settings.database_url, work)
    people, items, _, store_id = _population(url)
    clock = replay_clock(settings.model_copy(update={"database_url": url}))
    engine = open_engine(url)
    with engine.begin() as conn:  # a store made before a part of the state gets it first
        state.ensure(conn)
    who = {n: f"HISTORY-{n}" for n in args.lengths}
    for n, customer in who.items():
        events = _history(customer, n, items, store_id, clock, args.spread)
        for start in range(0, len(events), 500):
            accept_events(engine, events[start : start + 500])
    engine.dispose()
    port = free_port()
    server, log = start_serving(settings, url, port, 1, work / "serve.log")
    rows: dict[str, dict[int, dict[str, float]]] = {}
    routes = {
        "recommendations k=10": "recommendations?k=10",
        "churn": "churn",
        "profile": "profile",
        "next-best offer, decision standing": "next-best-offer?channel=web",
    }
    try:
        wait_for(f"http://127.0.0.1:{port}/ready", server)
        for case, route in routes.items():
            # The lengths take turns, --rounds times, and each keeps its best round: a
            # drift in the machine's speed during the run does not pass for a cost.
            for turn in range(args.rounds):
                for n, customer in who.items():
                    ask = _always(get(f"/v1/customers/{customer}/{route}", HEADERS))
                    closed_loop("127.0.0.1", port, ask, seconds=1, conns=1)  # warm
                    seconds = args.seconds / args.rounds
                    row = closed_loop("127.0.0.1", port, ask, seconds=seconds, conns=8).row()
                    best = rows.setdefault(case, {}).get(n)
                    if best is None or row["requests/s"] > best["requests/s"]:
                        rows[case][n] = row
                    print(f"{case}, {n} events, round {turn + 1}: {row}", flush=True)
                    # One connection: the time of one request alone, no queue, no sharing.
                    alone = closed_loop("127.0.0.1", port, ask, seconds=seconds / 2, conns=1)
                    p50 = alone.row()["p50 ms"]
                    fastest = rows[case][n].get("alone p50 ms")
                    rows[case][n]["alone p50 ms"] = p50 if fastest is None else min(fastest, p50)
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    _write(rows, args, url, len(people))
    shutil.rmtree(work, ignore_errors=True)


def _write(
    rows: dict[str, dict[int, dict[str, float]]], args: argparse.Namespace, url: str, n: int
) -> None:
    backend = make_url(url).get_backend_name()
    lengths = args.lengths
    head = (
        f"\n## {n:,} customers, {backend}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
        f"`.venv/bin/python benchmarks/history_length.py --lengths {' '.join(map(str, lengths))}"
        f" --seconds {args.seconds:g} --rounds {args.rounds}{' --spread' if args.spread else ''}`"
        ": one worker, "
        f"{os.cpu_count()} cores shared by server "
        f"and load generator, Python {platform.python_version()}; 8 connections, closed loop; "
        "every customer's events arrived after training (each answer folded in); the "
        "lengths take turns, each case's seconds split into the rounds, the best round "
        'of each kept; "alone": the median time of one request with one connection; '
        + ("each event its own visit" if args.spread else f"visits of {SESSION} events")
        + ".\n\n"
        "| case | "
        + " | ".join(f"{k} events: req/s, p99 ms; alone p50 ms" for k in lengths)
        + " | slowest / fastest, 8 connections | alone |\n"
        + "| --- " * (len(lengths) + 3)
        + "|\n"
    )
    lines = []
    for case, by_length in rows.items():
        rates = [by_length[k]["requests/s"] for k in lengths]
        alone = [by_length[k]["alone p50 ms"] for k in lengths]
        cells = [
            f"{r['requests/s']}, {r['p99 ms']}; {r['alone p50 ms']}"
            for r in (by_length[k] for k in lengths)
        ]
        ratio = max(rates) / max(min(rates), 1e-9)
        alone_ratio = max(alone) / max(min(alone), 1e-9)
        lines.append(f"| {case} | " + " | ".join(cells) + f" | {ratio:.2f}x | {alone_ratio:.2f}x |")
    append_results(
        "history_length.md", "Per-request cost against history length", head + "\n".join(lines)
    )


if __name__ == "__main__":
    main()
