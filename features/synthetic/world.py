"""The world customers shop in: catalogue with latent item factors, stores, stock, offers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features import columns as c
from features.synthetic.config import SyntheticConfig

CATEGORY_NAMES = (
    "Womenswear",
    "Menswear",
    "Shoes",
    "Accessories",
    "Beauty",
    "Home textiles",
    "Kitchen",
    "Electronics",
    "Toys",
    "Sports",
    "Outdoor",
    "Books",
    "Garden",
    "Pet care",
    "Grocery",
    "Stationery",
    "Lighting",
    "Furniture",
    "Baby",
    "Wellness",
)
BRAND_WORDS = (
    "Alder",
    "Birch",
    "Cedar",
    "Dune",
    "Ember",
    "Fjord",
    "Grove",
    "Harbor",
    "Iris",
    "Juniper",
    "Kestrel",
    "Linden",
    "Maple",
    "Nimbus",
    "Orchid",
    "Pebble",
    "Quartz",
    "Rowan",
    "Sable",
    "Tundra",
    "Umber",
    "Vale",
    "Willow",
    "Yarrow",
    "Zephyr",
)
#: Latitude, longitude and country of each city a store may be in.
PLACES = {
    "Lyon": (45.764, 4.836, "France"),
    "Leeds": (53.801, -1.549, "United Kingdom"),
    "Porto": (41.150, -8.611, "Portugal"),
    "Gent": (51.054, 3.717, "Belgium"),
    "Turin": (45.070, 7.687, "Italy"),
    "Malmo": (55.605, 13.004, "Sweden"),
    "Graz": (47.071, 15.440, "Austria"),
    "Cork": (51.899, -8.476, "Ireland"),
    "Bilbao": (43.263, -2.935, "Spain"),
    "Utrecht": (52.091, 5.122, "Netherlands"),
    "Bergen": (60.391, 5.322, "Norway"),
    "Krakow": (50.065, 19.945, "Poland"),
    "Nantes": (47.218, -1.554, "France"),
    "Bremen": (53.079, 8.802, "Germany"),
    "Aarhus": (56.163, 10.204, "Denmark"),
    "Brno": (49.195, 16.607, "Czechia"),
    "Seville": (37.389, -5.984, "Spain"),
    "Tampere": (61.498, 23.761, "Finland"),
}
CITIES = (
    "Lyon",
    "Leeds",
    "Porto",
    "Gent",
    "Turin",
    "Malmo",
    "Graz",
    "Cork",
    "Bilbao",
    "Utrecht",
    "Bergen",
    "Krakow",
    "Nantes",
    "Bremen",
    "Aarhus",
    "Brno",
    "Seville",
    "Tampere",
)


@dataclass(frozen=True)
class World:
    """Reference tables plus the hidden truth about items."""

    catalogue: pd.DataFrame
    stores: pd.DataFrame
    inventory: pd.DataFrame
    offers: pd.DataFrame
    #: Latent item factors (items x factors) and popularity (log scale).
    item_factors: np.ndarray
    item_bias: np.ndarray
    store_weight: np.ndarray


def make_world(cfg: SyntheticConfig, rng: np.random.Generator) -> World:
    """Build the catalogue, stores, inventory (with stock-outs) and offers."""
    n, k, d = cfg.n_items, min(cfg.categories, len(CATEGORY_NAMES)), cfg.factors
    category = np.sort(rng.choice(k, size=n, p=rng.dirichlet(np.full(k, 3.0))))
    category_centre = rng.normal(size=(k, d))
    factors = 0.8 * category_centre[category] + rng.normal(scale=0.6, size=(n, d))
    bias = -0.8 * np.log(rng.permutation(n) + 1.0)
    brand_of_category = rng.integers(0, len(BRAND_WORDS), size=(k, 5))
    brand = brand_of_category[category, rng.integers(0, 5, size=n)]
    base_price = np.exp(rng.normal(3.2, 0.7, size=k))
    price = np.round(base_price[category] * rng.lognormal(0, 0.35, size=n), 0) - 0.01
    ids = _ids("I", n, 6)
    categories = np.array(CATEGORY_NAMES)[category]
    brands = np.array(BRAND_WORDS)[brand]
    catalogue = pd.DataFrame(
        {
            c.ITEM_ID: ids,
            c.NAME: brands
            + " "
            + categories
            + " "
            + pd.Series(np.arange(n)).astype(str).str.zfill(4),
            c.CATEGORY: categories,
            c.BRAND: brands,
            c.PRICE: np.maximum(price, 0.99),
            c.ACTIVE: rng.random(n) > 0.03,
        }
    )
    s = cfg.n_stores
    store_ids = _ids("S", s, 3)
    city = [
        CITIES[i % len(CITIES)] + ("" if i < len(CITIES) else f" {i // len(CITIES) + 1}")
        for i in range(s)
    ]
    # Where each store is: its city's place, a second store in a city a few km off.
    place = [PLACES[CITIES[i % len(CITIES)]] for i in range(s)]
    off = np.array([0.03 * (i // len(CITIES)) for i in range(s)])
    stores = pd.DataFrame(
        {
            c.STORE_ID: store_ids,
            c.NAME: ["Omni " + x for x in city],
            c.CITY: city,
            c.LATITUDE: np.round([p[0] for p in place] + off, 4),
            c.LONGITUDE: np.round([p[1] for p in place] + off, 4),
            c.REGION: [p[2] for p in place],
        }
    )
    store_weight = rng.dirichlet(np.full(s, 4.0))
    inventory = _inventory(rng, ids, bias, store_ids, catalogue[c.ACTIVE].to_numpy())
    offers = _offers(cfg, catalogue, bias)
    return World(catalogue, stores, inventory, offers, factors, bias, store_weight)


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    return (prefix + pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(width)).to_numpy()


def _inventory(
    rng: np.random.Generator,
    items: np.ndarray,
    bias: np.ndarray,
    store_ids: np.ndarray,
    active: np.ndarray,
) -> pd.DataFrame:
    """Stores stock popular items more often; some stocked items are sold out (quantity 0)."""
    z = (bias - bias.mean()) / bias.std()
    stocked = rng.random((len(store_ids), len(items))) < 1 / (1 + np.exp(-(z + 0.2)))
    stocked &= active[None, :]
    s_idx, i_idx = np.nonzero(stocked)
    qty = rng.poisson(6, size=len(s_idx)) + 1
    qty[rng.random(len(s_idx)) < 0.08] = 0
    shops = pd.DataFrame({c.STORE_ID: store_ids[s_idx], c.ITEM_ID: items[i_idx], c.QUANTITY: qty})
    online_items = items[active]
    online_qty = rng.poisson(40, size=len(online_items))
    online_qty[rng.random(len(online_items)) < 0.02] = 0
    online = pd.DataFrame({c.STORE_ID: c.ONLINE, c.ITEM_ID: online_items, c.QUANTITY: online_qty})
    return pd.concat([shops, online], ignore_index=True)


def _offers(cfg: SyntheticConfig, catalogue: pd.DataFrame, bias: np.ndarray) -> pd.DataFrame:
    """A small offer book: product deals, category promotions, services, a retention incentive."""
    start = pd.Timestamp(cfg.end) - pd.Timedelta(days=60)
    until = pd.Timestamp(cfg.end) + pd.Timedelta(days=60)
    top = catalogue.iloc[np.argsort(-bias)[:4]]
    cats = catalogue[c.CATEGORY].value_counts().index[:3]
    rows = [
        (
            f"O-ITEM-{i + 1}",
            f"15% off {r[c.NAME]}",
            "product",
            r[c.ITEM_ID],
            None,
            "",
            round(r[c.PRICE] * 0.15, 2),
        )
        for i, (_, r) in enumerate(top.iterrows())
    ]
    rows += [
        (f"O-CAT-{i + 1}", f"2 for 1 in {cat}", "promotion", None, cat, "web,app,store,email", 8.0)
        for i, cat in enumerate(cats)
    ]
    rows += [
        ("O-CC", "Free click & collect", "service", None, None, "web,app,email", 3.0),
        ("O-LOYALTY", "Join the loyalty club", "service", None, None, "store,app", 5.0),
        ("O-GOLD", "Gold members: free home delivery", "service", None, None, "", 6.0),
        (
            "O-WINBACK",
            "We miss you: 20 off your next basket",
            "retention",
            None,
            None,
            "email,app",
            20.0,
        ),
    ]
    frame = pd.DataFrame(
        rows, columns=[c.OFFER_ID, c.NAME, c.KIND, c.ITEM_ID, c.CATEGORY, c.CHANNELS, c.VALUE]
    )
    frame[c.VALID_FROM] = start
    frame[c.VALID_UNTIL] = until
    frame[c.TIERS] = frame[c.OFFER_ID].map({"O-GOLD": "gold"})
    return frame
