"""Adapter for the Complete Journey folder (grocery baskets from 457 physical stores).

- transactions -> `purchase` events in the `store` channel, with `store_id`, the basket
  as `order_id` and the unit price (sales_value / quantity). The files carry no UTC
  offset; their times are read as UTC. Lines with quantity <= 0 are adjustments, not
  purchases, and are left out (the report says how many).
- products -> the catalogue (category: product_category, else department; brand: the
  manufacturer; price: the median unit price paid).
- households -> customers (home store: where they shop most; no consent is recorded).
- stores -> stores; campaigns -> `promotion` offers valid over the campaign dates.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features import columns as c
from features.sources.files import SourceError
from features.sources.frame import SourceFrame, label_rows


def read_completejourney(folder: Path) -> list[SourceFrame]:
    """Read the folder; raises `SourceError` when a needed file is missing."""
    needed = ["transactions.parquet", "products.parquet", "campaign_descriptions.parquet"]
    absent = [name for name in needed if not (folder / name).exists()]
    if absent:
        raise SourceError(f"{folder}: not a Complete Journey folder (missing {', '.join(absent)})")
    tx = pd.read_parquet(folder / "transactions.parquet")
    kept = tx[tx["quantity"] > 0].reset_index(drop=True)
    dropped = len(tx) - len(kept)
    events = _events(kept)
    sources = [
        _source(
            "catalogue",
            _catalogue(pd.read_parquet(folder / "products.parquet"), kept),
            "products.parquet",
        ),
        _source("stores", _stores(kept), "transactions.parquet"),
        _source("customers", _customers(kept), "transactions.parquet"),
        _source("offers", _offers(folder), "campaign_descriptions.parquet"),
        SourceFrame(
            "events",
            "transactions.parquet",
            events,
            label_rows("transactions.parquet", "row", 1, len(events)),
            (f"left out {dropped:,} transaction lines with quantity <= 0 (adjustments)",),
        ),
    ]
    return sources


def _source(table: str, frame: pd.DataFrame, origin: str) -> SourceFrame:
    return SourceFrame(table, origin, frame, label_rows(origin, "record", 1, len(frame)))


def _events(tx: pd.DataFrame) -> pd.DataFrame:
    basket = tx["basket_id"].astype(str)
    product = tx["product_id"].astype(str)
    repeat = tx.groupby(["basket_id", "product_id"]).cumcount().astype(str)
    return pd.DataFrame(
        {
            c.EVENT_ID: "cj-" + basket + "-" + product + "-" + repeat,
            c.TS: tx["transaction_timestamp"].dt.tz_localize("UTC"),
            c.CUSTOMER_ID: tx["household_id"].astype(str),
            c.CHANNEL: c.Channel.STORE.value,
            c.TYPE: c.EventType.PURCHASE.value,
            c.ITEM_ID: product,
            c.QUANTITY: tx["quantity"],
            c.PRICE: (tx["sales_value"] / tx["quantity"]).round(4),
            c.STORE_ID: tx["store_id"].astype(str),
            c.ORDER_ID: basket,
        }
    )


def _catalogue(products: pd.DataFrame, tx: pd.DataFrame) -> pd.DataFrame:
    unit_price = (tx["sales_value"] / tx["quantity"]).groupby(tx["product_id"]).median()
    category = products["product_category"].fillna(products["department"]).fillna("UNKNOWN")
    return pd.DataFrame(
        {
            c.ITEM_ID: products["product_id"].astype(str),
            c.NAME: products["product_type"].fillna(category),
            c.CATEGORY: category,
            c.BRAND: "manufacturer " + products["manufacturer_id"].astype(str),
            c.PRICE: products["product_id"].map(unit_price).round(2),
            c.ACTIVE: True,
        }
    )


def _stores(tx: pd.DataFrame) -> pd.DataFrame:
    ids = pd.Series(sorted(tx["store_id"].unique())).astype(str)
    return pd.DataFrame({c.STORE_ID: ids, c.NAME: "Store " + ids})


def _customers(tx: pd.DataFrame) -> pd.DataFrame:
    visits = tx.drop_duplicates("basket_id").groupby(["household_id", "store_id"]).size()
    home = visits.reset_index(name="n").sort_values(["household_id", "n"], ascending=[True, False])
    home = home.drop_duplicates("household_id")
    return pd.DataFrame(
        {
            c.CUSTOMER_ID: home["household_id"].astype(str),
            c.HOME_STORE_ID: home["store_id"].astype(str),
        }
    )


def _offers(folder: Path) -> pd.DataFrame:
    campaigns = pd.read_parquet(folder / "campaign_descriptions.parquet")
    ids = campaigns["campaign_id"].astype(str)
    return pd.DataFrame(
        {
            c.OFFER_ID: "cj-campaign-" + ids,
            c.NAME: "Campaign " + ids + " (" + campaigns["campaign_type"].astype(str) + ")",
            c.KIND: "promotion",
            c.CHANNELS: c.Channel.STORE.value,
            c.VALID_FROM: pd.to_datetime(campaigns["start_date"]).dt.tz_localize("UTC"),
            c.VALID_UNTIL: pd.to_datetime(campaigns["end_date"]).dt.tz_localize("UTC")
            + pd.Timedelta(days=1),
        }
    )
