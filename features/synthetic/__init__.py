"""The synthetic omnichannel generator: a deterministic retail world with known ground truth.

`generate(SyntheticConfig(...))` returns every table `omni ingest` reads (catalogue, stores,
inventory, customers, offers, events) plus the truth a test may check against;
`write_synthetic` writes the same data to a folder, events in shards of customers, so
that memory stays bounded from a thousand to millions of customers.

The truth:

- `truth/customers`: segment (online_first / store_first / omnichannel), sessions per
  month, whether and when the customer churned (`fade_start`, `churn_date`), the
  loyalty-card id that shares their e-mail, and their latent taste vector `taste_*`.
- `truth/items`: each item's latent factors `factor_*` and popularity `popularity_bias`.
  A customer's true affinity to an item is
  TASTE_WEIGHT * taste . factors / sqrt(factors) + popularity_bias (people.TASTE_WEIGHT),
  and the items they consider are drawn by that affinity plus Gumbel noise.

See `features.synthetic.journeys` for the journeys and `features.synthetic.people` for
the identities (cookies, app devices, payment tokens, shared laptops, loyalty cards).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features import columns as c
from features.synthetic.config import SyntheticConfig
from features.synthetic.journeys import make_events
from features.synthetic.people import People, make_people
from features.synthetic.world import World, make_world

__all__ = ["WRITE_FORMATS", "SyntheticConfig", "SyntheticData", "generate", "write_synthetic"]

#: Formats `write_synthetic` can write, all of which `omni ingest` reads.
WRITE_FORMATS = ("parquet", "csv", "jsonl")
#: Customers whose journeys are drawn (and written) together; each shard has its own
#: random stream, so the data does not depend on how it is consumed.
SHARD_CUSTOMERS = 25_000


@dataclass(frozen=True)
class SyntheticData:
    """The generated tables (by Omni table name) and the hidden truth."""

    tables: dict[str, pd.DataFrame]
    truth: dict[str, pd.DataFrame]


def generate(cfg: SyntheticConfig) -> SyntheticData:
    """Generate the whole data set in memory (events of all shards, in time order)."""
    world, people = _population(cfg)
    events = pd.concat(list(_event_shards(cfg, world, people)), ignore_index=True)
    events = events.sort_values(c.TS, kind="stable", ignore_index=True)
    return SyntheticData(
        tables={**_reference(world, people), "events": events}, truth=_truth(cfg, world, people)
    )


def write_synthetic(
    cfg: SyntheticConfig,
    folder: Path,
    fmt: str = "parquet",
    on_shard: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Write every table as `<table>.<fmt>` (events as `events-NNN.<fmt>` when there are
    several shards) and the truth under `truth/`. Returns rows written per table.

    `on_shard(done, total)` is called after each events shard. Raises `ValueError` for an
    unknown format.
    """
    if fmt not in WRITE_FORMATS:
        raise ValueError(f"format must be one of {', '.join(WRITE_FORMATS)}, not {fmt!r}")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("events*.*"):
        old.unlink()
    (folder / "truth").mkdir(exist_ok=True)
    world, people = _population(cfg)
    counts = {}
    for name, frame in _reference(world, people).items():
        _write(frame, folder / f"{name}.{fmt}", fmt)
        counts[name] = len(frame)
    for name, frame in _truth(cfg, world, people).items():
        _write(frame, folder / "truth" / f"{name}.parquet", "parquet")
    total = _shard_count(cfg)
    counts["events"] = 0
    for k, events in enumerate(_event_shards(cfg, world, people)):
        name = "events" if total == 1 else f"events-{k:03d}"
        _write(events, folder / f"{name}.{fmt}", fmt)
        counts["events"] += len(events)
        if on_shard is not None:
            on_shard(k + 1, total)
    return counts


def _population(cfg: SyntheticConfig) -> tuple[World, People]:
    rng = np.random.default_rng(cfg.seed)
    world = make_world(cfg, rng)
    return world, make_people(cfg, world, rng)


def _shard_count(cfg: SyntheticConfig) -> int:
    return -(-cfg.customers // SHARD_CUSTOMERS)


def _event_shards(cfg: SyntheticConfig, world: World, people: People) -> Iterator[pd.DataFrame]:
    for k in range(_shard_count(cfg)):
        rows = slice(k * SHARD_CUSTOMERS, (k + 1) * SHARD_CUSTOMERS)
        rng = np.random.default_rng([cfg.seed, k])
        yield make_events(cfg, world, people.shoppers.subset(rows), rng, f"s{cfg.seed}-{k:03d}-")


def _reference(world: World, people: People) -> dict[str, pd.DataFrame]:
    return {
        "catalogue": world.catalogue,
        "stores": world.stores,
        "inventory": world.inventory,
        "customers": people.customers,
        "offers": world.offers,
    }


def _truth(cfg: SyntheticConfig, world: World, people: People) -> dict[str, pd.DataFrame]:
    items = pd.DataFrame(
        {
            c.ITEM_ID: world.catalogue[c.ITEM_ID],
            "popularity_bias": world.item_bias,
            **{f"factor_{j}": world.item_factors[:, j] for j in range(cfg.factors)},
        }
    )
    return {"customers": people.truth, "items": items}


def _write(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
        return
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    if fmt == "csv":
        out.to_csv(path, index=False)
    else:
        out.to_json(path, orient="records", lines=True)
