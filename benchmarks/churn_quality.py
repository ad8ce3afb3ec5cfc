"""Churn quality: Omni against recency and BG/NBD, out of time, on three data sets.

    .venv/bin/python benchmarks/churn_quality.py          # or: make bench-churn

For each data set: three monthly training cutoffs, a validation cutoff (calibration,
bands), and a test cutoff whose 90-day horizon is the last 90 days of the data.
Data sets: synthetic (10,000 customers), completejourney, cdnow (purchases only, no
items; the features are item-free). Results: benchmarks/results/churn.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from features import columns as c
from features.sources.completejourney import read_completejourney
from features.synthetic import SyntheticConfig, generate
from models.churn import ChurnModel
from models.churn_baselines import RecencyBaseline
from training.churn_metrics import churn_metrics
from training.tracking import comparison_markdown
from training.train_churn import bgnbd_scores, cutoffs_for, dataset

ROOT = Path(__file__).resolve().parents[1]
HORIZON = 90
LOOKBACK = 365


def synthetic(customers: int) -> pd.DataFrame:
    events = generate(SyntheticConfig(customers=customers, seed=21)).tables["events"]
    return events.assign(**{c.PERSON_ID: events[c.CUSTOMER_ID]})


def completejourney(folder: Path) -> pd.DataFrame:
    events = next(s.frame for s in read_completejourney(folder) if s.table == "events")
    return events.assign(**{c.PERSON_ID: events[c.CUSTOMER_ID]})


def cdnow(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": str, "date": str})
    cds = raw["number_of_cds"].clip(lower=1)
    return pd.DataFrame(
        {
            c.PERSON_ID: raw["customer_id"],
            c.TS: pd.to_datetime(raw["date"], format="%Y%m%d").dt.tz_localize("UTC"),
            c.TYPE: c.EventType.PURCHASE.value,
            c.CHANNEL: c.Channel.WEB.value,
            c.ITEM_ID: None,
            c.QUANTITY: pd.array(cds, dtype="Int64"),
            c.PRICE: raw["dollar_value"] / cds,
            c.STORE_ID: None,
        }
    )


def evaluate(events: pd.DataFrame) -> pd.DataFrame:
    cuts = cutoffs_for(events, None, HORIZON, LOOKBACK, train_cutoffs=3)
    X, y = dataset(events, cuts[:-2], HORIZON, LOOKBACK)
    X_val, y_val = dataset(events, cuts[-2:-1], HORIZON, LOOKBACK)
    X_test, y_test = dataset(events, cuts[-1:], HORIZON, LOOKBACK)
    truth = y_test.to_numpy().astype(int)
    fits: dict[str, Callable[[], np.ndarray | None]] = {
        "recency": lambda: RecencyBaseline().fit(X, y).predict_proba(X_test),
        "bg/nbd": lambda: bgnbd_scores(X_test, HORIZON),
        "omni": lambda: ChurnModel().fit(X, y, X_val, y_val).predict_proba(X_test),
    }
    rows = {}
    for name, fit in fits.items():
        started = time.perf_counter()
        p = fit()
        seconds = time.perf_counter() - started
        metrics = churn_metrics(truth, p) if p is not None else {"auc": float("nan")}
        rows[name] = {**metrics, "train s": seconds}
    table = pd.DataFrame(rows).T
    table.index.name = "model"
    table["customers"] = len(truth)
    table["churn rate"] = truth.mean()
    print(f"  test cutoff {cuts[-1]:%Y-%m-%d}", flush=True)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "churn.md")
    args = parser.parse_args()
    sets: dict[str, Callable[[], pd.DataFrame]] = {
        f"synthetic ({args.customers:,} customers)": lambda: synthetic(args.customers)
    }
    if (args.data / "completejourney").is_dir():
        sets["completejourney"] = lambda: completejourney(args.data / "completejourney")
    if (args.data / "cdnow" / "CDNOW_master.txt.gz").exists():
        sets["cdnow"] = lambda: cdnow(args.data / "cdnow" / "CDNOW_master.txt.gz")
    parts = [
        "# Churn quality",
        "",
        f"`.venv/bin/python benchmarks/churn_quality.py`: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}. One run; out of time: "
        f"horizon {HORIZON} days, lookback {LOOKBACK} days, three monthly training cutoffs, "
        "a validation cutoff, then the test cutoff.",
    ]
    for name, load in sets.items():
        print(name, flush=True)
        table = evaluate(load())
        parts += ["", f"## {name}", "", comparison_markdown(table, list(table.columns)).strip()]
        print(parts[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(parts) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
