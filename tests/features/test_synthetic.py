"""The synthetic generator: deterministic, valid, and with the behaviour its docs promise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features import synthetic
from features.schema import TABLES
from features.synthetic import SyntheticConfig, SyntheticData, generate
from features.synthetic.people import TASTE_WEIGHT
from features.validation import validate


def test_same_seed_same_data_other_seed_other_data() -> None:
    a = generate(SyntheticConfig(customers=80, seed=3))
    b = generate(SyntheticConfig(customers=80, seed=3))
    c = generate(SyntheticConfig(customers=80, seed=4))
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    assert not a.tables["events"].equals(c.tables["events"])
    assert set(a.tables["events"]["event_id"]).isdisjoint(c.tables["events"]["event_id"])


def test_every_table_passes_the_schema(small_world: SyntheticData) -> None:
    for name, frame in small_world.tables.items():
        batch = validate(frame, TABLES[name])
        assert len(batch.frame) == len(frame)
        assert batch.repeats == 0


def test_size_follows_the_parameter() -> None:
    small = generate(SyntheticConfig(customers=100, seed=1))
    large = generate(SyntheticConfig(customers=1000, seed=1))
    ratio = len(large.tables["events"]) / len(small.tables["events"])
    assert 7 < ratio < 13
    with pytest.raises(ValueError, match="customers must be"):
        SyntheticConfig(customers=5)


def test_churners_fade_then_stop(small_world: SyntheticData) -> None:
    truth = small_world.truth["customers"].set_index("customer_id")
    events = small_world.tables["events"].dropna(subset=["customer_id"])
    churners = truth[truth["churned"]]
    assert 0.1 < truth["churned"].mean() < 0.3
    joined = events.join(churners[["churn_date", "fade_start"]], on="customer_id", how="inner")
    assert (joined["ts"] < joined["churn_date"]).all()
    # Precursor: in the fade window churners buy less often per day than before it.
    purchases = joined[joined["type"] == "purchase"]
    days_fading = (churners["churn_date"] - churners["fade_start"]).dt.days.sum()
    days_before = (churners["fade_start"] - purchases["ts"].min()).dt.days.clip(lower=1).sum()
    fading = (purchases["ts"] >= purchases["fade_start"]).sum() / days_fading
    before = (purchases["ts"] < purchases["fade_start"]).sum() / days_before
    assert fading < 0.8 * before


def test_purchases_follow_the_hidden_taste(small_world: SyntheticData) -> None:
    truth = small_world.truth
    taste = truth["customers"].set_index("customer_id").filter(like="taste_")
    items = truth["items"].set_index("item_id")
    factors = items.filter(like="factor_")
    fit = taste.to_numpy() @ factors.to_numpy().T * TASTE_WEIGHT / np.sqrt(factors.shape[1])
    bought = small_world.tables["events"].query(
        "type == 'purchase' and customer_id.str.startswith('C')"
    )
    rows = taste.index.get_indexer(bought["customer_id"])
    cols = items.index.get_indexer(bought["item_id"])
    # The taste term of bought items is far above that of the customer's average item
    # (about one standard deviation of the taste term across the catalogue).
    lift = fit[rows, cols].mean() - fit.mean(axis=1)[rows].mean()
    assert lift > fit.std(axis=1).mean()
    # And popular items sell more: the bias of bought items beats the catalogue's.
    assert items["popularity_bias"].iloc[cols].mean() > items["popularity_bias"].mean() + 0.5


def test_omnichannel_journeys_are_present(small_world: SyntheticData) -> None:
    ev = small_world.tables["events"]
    channels = set(ev["channel"])
    assert {"web", "app", "store", "email"} <= channels
    assert ev.loc[ev["channel"] == "store", "store_id"].notna().all()
    # Web carts abandoned then bought in a store (order ids ending in "s").
    assert ev["order_id"].fillna("").str.match(r"^o\d+s$").any()
    # Click & collect: online purchases with a pickup store.
    online = ev[(ev["channel"] != "store") & (ev["type"] == "purchase")]
    assert online["store_id"].notna().any()
    # Anonymous browsing that later identifies, and carts never bought.
    assert (ev["type"] == "identify").any()
    assert (ev["customer_id"].isna() & (ev["type"] == "add_to_cart")).any()
    assert {"return", "email_open", "email_click", "wishlist", "remove_from_cart"} <= set(
        ev["type"]
    )
    stock = small_world.tables["inventory"]
    assert (stock["quantity"] == 0).any() and (stock["store_id"] == "online").any()


def test_loyalty_cards_share_the_address_of_their_account(small_world: SyntheticData) -> None:
    customers = small_world.tables["customers"]
    cards = customers[customers["customer_id"].str.startswith("L")]
    assert len(cards) > 0
    accounts = customers.set_index("customer_id")
    owners = "C" + cards["customer_id"].str[1:]
    assert (accounts.loc[owners, "email"].to_numpy() == cards["email"].to_numpy()).all()


def test_sharded_files_hold_exactly_the_in_memory_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(synthetic, "SHARD_CUSTOMERS", 40)
    cfg = SyntheticConfig(customers=100, seed=2)
    counts = synthetic.write_synthetic(cfg, tmp_path)
    files = sorted(p.name for p in tmp_path.glob("events*"))
    assert files == ["events-000.parquet", "events-001.parquet", "events-002.parquet"]
    written = pd.concat([pd.read_parquet(tmp_path / f) for f in files], ignore_index=True)
    in_memory = generate(cfg).tables["events"]
    assert counts["events"] == len(written) == len(in_memory)
    by_id = ["event_id"]
    pd.testing.assert_frame_equal(
        written.sort_values(by_id, ignore_index=True),
        in_memory.sort_values(by_id, ignore_index=True),
        check_dtype=False,
    )
    assert (tmp_path / "truth" / "customers.parquet").exists()
