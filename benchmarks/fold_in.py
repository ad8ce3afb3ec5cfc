"""Fold-in latency: a customer's new events change their ALS recommendations per request.

    .venv/bin/python benchmarks/fold_in.py

Fits ALS on synthetic data, then for single customers: rebuild their interaction row with
a few new events, solve their factors against the trained item factors (`ALS.fold_in`),
score the catalogue and take the top 10. Reports the median and p99 over many calls, and
checks the new events moved the recommendations. Results: benchmarks/results/fold_in.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from features import columns as c
from features.interactions import interactions
from features.matrix import build_matrix
from features.synthetic import SyntheticConfig, generate
from models import ALS

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fold_in.md")
    args = parser.parse_args()
    data = generate(SyntheticConfig(customers=args.customers, seed=5))
    events = data.tables["events"].assign(**{c.PERSON_ID: data.tables["events"][c.CUSTOMER_ID]})
    as_of = events[c.TS].max() + pd.Timedelta(seconds=1)
    matrix = build_matrix(
        interactions(events, as_of=as_of), as_of=as_of, catalogue=data.tables["catalogue"]
    )
    model = ALS().fit(matrix)
    rng = np.random.default_rng(0)
    n_items = len(model.items_)
    timings, moved = [], 0
    for _ in range(args.calls):
        row = int(rng.integers(len(model.users_)))
        history = model.history_[row].toarray().ravel()
        new_items = rng.choice(n_items, size=3, replace=False)
        started = time.perf_counter()
        updated = history.copy()
        updated[new_items] += 6.0  # three purchases just now
        factors = model.fold_in(csr_matrix(updated[None, :]))
        scores = factors @ model.item_factors_.T
        top = np.argpartition(-scores[0], 10)[:10]
        timings.append(time.perf_counter() - started)
        before = np.argpartition(-(model.user_factors_[row] @ model.item_factors_.T), 10)[:10]
        moved += not np.array_equal(np.sort(top), np.sort(before))
    ms = np.array(timings) * 1000
    lines = [
        "# ALS fold-in latency",
        "",
        f"`.venv/bin/python benchmarks/fold_in.py`: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}; {args.customers:,} synthetic "
        f"customers, {n_items:,} items, {model.factors} factors, {args.calls} single calls.",
        "",
        "| step | median ms | p99 ms |",
        "| --- | ---: | ---: |",
        f"| fold in 3 new purchases + score the catalogue + top 10 | {np.median(ms):.2f} | "
        f"{np.percentile(ms, 99):.2f} |",
        "",
        f"Recommendations changed for {moved} of {args.calls} customers.",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
