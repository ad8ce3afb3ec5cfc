"""The synthetic omnichannel generator: a deterministic retail world with known ground truth.

`generate(SyntheticConfig(...))` returns every table `omni ingest` reads (catalogue, stores,
inventory, customers, offers, events) plus the truth a test may check against:

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

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features import columns as c
from features.synthetic.config import SyntheticConfig
from features.synthetic.journeys import make_events
from features.synthetic.people import make_people
from features.synthetic.world import make_world

__all__ = ["SyntheticConfig", "SyntheticData", "generate"]

#: Formats `SyntheticData.write` can write, all of which `omni ingest` reads.
WRITE_FORMATS = ("parquet", "csv", "jsonl")


@dataclass(frozen=True)
class SyntheticData:
    """The generated tables (by Omni table name) and the hidden truth."""

    tables: dict[str, pd.DataFrame]
    truth: dict[str, pd.DataFrame]

    def write(self, folder: Path, fmt: str = "parquet") -> list[Path]:
        """Write every table as `<table>.<fmt>` and the truth under `truth/`; returns the paths."""
        if fmt not in WRITE_FORMATS:
            raise ValueError(f"format must be one of {', '.join(WRITE_FORMATS)}, not {fmt!r}")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "truth").mkdir(exist_ok=True)
        written = []
        for name, frame in self.tables.items():
            written.append(_write(frame, folder / f"{name}.{fmt}", fmt))
        for name, frame in self.truth.items():
            written.append(_write(frame, folder / "truth" / f"{name}.parquet", "parquet"))
        return written


def generate(cfg: SyntheticConfig) -> SyntheticData:
    """Generate the world, its customers and a window of their journeys."""
    rng = np.random.default_rng(cfg.seed)
    world = make_world(cfg, rng)
    people = make_people(cfg, world, rng)
    events = make_events(cfg, world, people, rng)
    items_truth = pd.DataFrame(
        {
            c.ITEM_ID: world.catalogue[c.ITEM_ID],
            "popularity_bias": world.item_bias,
            **{f"factor_{j}": world.item_factors[:, j] for j in range(cfg.factors)},
        }
    )
    return SyntheticData(
        tables={
            "catalogue": world.catalogue,
            "stores": world.stores,
            "inventory": world.inventory,
            "customers": people.customers,
            "offers": world.offers,
            "events": events,
        },
        truth={"customers": people.truth, "items": items_truth},
    )


def _write(frame: pd.DataFrame, path: Path, fmt: str) -> Path:
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
        return path
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    if fmt == "csv":
        out.to_csv(path, index=False)
    else:
        out.to_json(path, orient="records", lines=True)
    return path
