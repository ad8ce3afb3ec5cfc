"""Recommendation quality: every model in one harness, synthetic data and Complete Journey.

    .venv/bin/python benchmarks/recommender_quality.py            # or: make bench-recommender

- synthetic: the last 28 days are the test window; also reports how close each model's
  top 20 comes to the hidden truth (NDCG@20 against each customer's 20 items of highest
  true affinity, `truth N@20`).
- completejourney (when the folder is beside the project): next-basket style, four
  weekly test windows over the last four weeks, metrics averaged over the windows;
  `pipeline s` is one whole `compare` (all models: fit and evaluate) on the last window;
  then one 28-day window after 2017-12-04.

Every NDCG@10 is the default answer (the repeat policy applied); `repeat` / `new` cut the
truth to items bought before / new to the customer; `include_purchased` is the list with
no policy.

Results go to benchmarks/results/recommender.md.
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
from features.identity import resolve, stitch
from features.sources.completejourney import read_completejourney
from features.synthetic import SyntheticConfig, SyntheticData, generate
from features.synthetic.people import TASTE_WEIGHT
from models.base import Recommender
from training.evaluate import TemporalSplit, compare
from training.metrics import ranking_metrics
from training.tracking import comparison_markdown
from training.train_recommender import candidate_models

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = {
    "all/recall@20": "Recall@20",
    "all/ndcg@10": "NDCG@10",
    "all/map@10": "MAP@10",
    "all/coverage@20": "coverage@20",
    "repeat/ndcg@10": "repeat NDCG@10",
    "new/ndcg@10": "new NDCG@10",
    "any/ndcg@10": "include_purchased NDCG@10",
    "train_s": "train s",
}


def synthetic_events(data: SyntheticData) -> pd.DataFrame:
    """Events with person_id stitched as the store would (identify + shared e-mails)."""
    events = data.tables["events"]
    both = events.dropna(subset=[c.CUSTOMER_ID, c.ANONYMOUS_ID])
    links = both.groupby([c.CUSTOMER_ID, c.ANONYMOUS_ID], as_index=False).agg(
        first_ts=(c.TS, "min"), n=(c.EVENT_ID, "size")
    )
    identity = stitch(links, data.tables["customers"]).frame
    return events.assign(**{c.PERSON_ID: resolve(events, identity)})


def truth_closeness(
    fitted: dict[str, Recommender], data: SyntheticData, sample: int = 2000
) -> dict[str, float]:
    """NDCG@20 of each model's top 20 against the customer's 20 truly best items."""
    truth = data.truth["customers"].set_index(c.CUSTOMER_ID)
    items = data.truth["items"].set_index(c.ITEM_ID)
    any_model = next(iter(fitted.values()))
    known = [u for u in any_model.users_.ids if u in truth.index][:sample]
    taste = truth.loc[known].filter(like="taste_").to_numpy()
    item_order = items.reindex(any_model.items_.ids)
    factors = item_order.filter(like="factor_").to_numpy()
    affinity = taste @ factors.T * TASTE_WEIGHT / np.sqrt(factors.shape[1])
    affinity += item_order["popularity_bias"].to_numpy()
    best = np.argsort(-affinity, axis=1)[:, :20]
    rel = csr_matrix(
        (np.ones(best.size), (np.repeat(np.arange(len(known)), 20), best.ravel())),
        shape=(len(known), len(item_order)),
    )
    out = {}
    for name, model in fitted.items():
        ranked, _ = model.rank(model.users_.positions(known), 20)
        out[name] = ranking_metrics(ranked, rel, 20)["ndcg@20"]
    return out


def run_synthetic(customers: int) -> pd.DataFrame:
    data = generate(SyntheticConfig(customers=customers, seed=11))
    events = synthetic_events(data)
    split = TemporalSplit.last_days(events, 28)
    table, fitted = compare(candidate_models(), events, split, catalogue=data.tables["catalogue"])
    shown = table[list(COLUMNS)].rename(columns=COLUMNS)
    shown["truth N@20"] = pd.Series(truth_closeness(fitted, data))
    return shown


def run_completejourney(folder: Path) -> pd.DataFrame:
    sources = {s.table: s.frame for s in read_completejourney(folder)}
    events = sources["events"].assign(**{c.PERSON_ID: sources["events"][c.CUSTOMER_ID]})
    end = events[c.TS].max().normalize() + pd.Timedelta(days=1)
    tables, pipeline_s = [], 0.0
    for week in range(4, 0, -1):
        cutoff = end - pd.Timedelta(days=7 * week)
        split = TemporalSplit(cutoff, cutoff + pd.Timedelta(days=7))
        started = time.perf_counter()
        table, _ = compare(candidate_models(), events, split, catalogue=sources["catalogue"])
        pipeline_s = time.perf_counter() - started
        tables.append(table[list(COLUMNS)])
        print(f"  window from {cutoff:%Y-%m-%d}: {pipeline_s:.0f}s", flush=True)
    mean = sum(tables[1:], tables[0]) / len(tables)
    shown = mean.rename(columns=COLUMNS)
    shown["pipeline s"] = pipeline_s
    return shown


def run_completejourney_month(folder: Path) -> pd.DataFrame:
    """Events before 2017-12-04, truth = what each returning household bought in the next
    28 days: the window the repeat-policy and baseline settings were not chosen on."""
    sources = {s.table: s.frame for s in read_completejourney(folder)}
    events = sources["events"].assign(**{c.PERSON_ID: sources["events"][c.CUSTOMER_ID]})
    cutoff = pd.Timestamp("2017-12-04", tz="UTC")
    split = TemporalSplit(cutoff, cutoff + pd.Timedelta(days=28))
    table, _ = compare(candidate_models(), events, split, catalogue=sources["catalogue"])
    return table[list(COLUMNS)].rename(columns=COLUMNS)


def markdown(table: pd.DataFrame) -> str:
    return comparison_markdown(table, list(table.columns)).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument(
        "--completejourney", type=Path, default=ROOT.parent / "shared" / "data" / "completejourney"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "recommender.md"
    )
    args = parser.parse_args()
    parts = [
        "# Recommendation quality",
        "",
        f"`.venv/bin/python benchmarks/recommender_quality.py`: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}. One run; full-catalogue "
        "ranking; the model marked by `omni train recommender` is the best NDCG@10.",
    ]
    print("synthetic", flush=True)
    synthetic = run_synthetic(args.customers)
    parts += ["", f"## Synthetic, {args.customers:,} customers, last 28 days as test", "",
              markdown(synthetic)]  # fmt: skip
    print(markdown(synthetic), flush=True)
    if args.completejourney.is_dir():
        print("completejourney", flush=True)
        cj = run_completejourney(args.completejourney)
        parts += ["", "## Complete Journey, four weekly test windows (mean)", "", markdown(cj)]
        print(markdown(cj), flush=True)
        month = run_completejourney_month(args.completejourney)
        parts += ["", "## Complete Journey, events before 2017-12-04, the next 28 days", "",
                  markdown(month)]  # fmt: skip
        print(markdown(month), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(parts) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
