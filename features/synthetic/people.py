"""Customers: latent taste, channel habits, home store, consent, identities, and who churns."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from features import columns as c
from features.synthetic.config import SyntheticConfig
from features.synthetic.world import World

SEGMENTS = ("online_first", "store_first", "omnichannel")
#: Share of sessions on web, app, store for each segment (jittered per customer).
SEGMENT_CHANNELS = np.array([[0.55, 0.35, 0.10], [0.15, 0.05, 0.80], [0.35, 0.25, 0.40]])
FIRST = (
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Elif",
    "Finn",
    "Gia",
    "Hugo",
    "Ines",
    "Jonas",
    "Kai",
    "Lena",
    "Mo",
    "Nora",
    "Omar",
    "Pia",
    "Raj",
    "Sara",
    "Tom",
    "Uma",
    "Vera",
    "Wim",
    "Yara",
    "Zoe",
)
LAST = (
    "Adler",
    "Berg",
    "Costa",
    "Dietz",
    "Evans",
    "Faure",
    "Garcia",
    "Hansen",
    "Ivanov",
    "Jensen",
    "Klein",
    "Lopez",
    "Moreau",
    "Novak",
    "Olsen",
    "Petit",
    "Rossi",
    "Silva",
    "Torres",
    "Weber",
)
#: Items each customer considers, best first; sessions draw from this list.
CONSIDERATION = 40
#: Weight of taste against popularity: affinity = TASTE_WEIGHT * taste . factors / sqrt(d) + bias.
TASTE_WEIGHT = 2.0


@dataclass(frozen=True)
class Shoppers:
    """Per-customer arrays the journeys draw from (row i is one customer); sliceable."""

    ids: np.ndarray
    consent_email: np.ndarray
    #: Their considered items (indices into the catalogue), best first.
    consider: np.ndarray
    channel_probs: np.ndarray
    #: Active window, as seconds since the window start; fading starts at `fade_from`.
    active_from: np.ndarray
    active_until: np.ndarray
    fade_from: np.ndarray
    home_store: np.ndarray
    open_rate: np.ndarray
    rate_per_day: np.ndarray
    #: A second customer id (a loyalty card with the same e-mail) or "" for none.
    loyalty_id: np.ndarray
    web_cookies: np.ndarray
    device_id: np.ndarray
    pay_token: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows: slice) -> Shoppers:
        """The same arrays for a slice of customers."""
        return Shoppers(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})


@dataclass(frozen=True)
class People:
    """Customer records, the hidden truth the generator exposes, and the shoppers' arrays."""

    customers: pd.DataFrame
    truth: pd.DataFrame
    shoppers: Shoppers


def make_people(cfg: SyntheticConfig, world: World, rng: np.random.Generator) -> People:
    """Draw the customers. Churners' activity fades over 30-90 days, then stops."""
    n, horizon = cfg.customers, cfg.days * 86_400.0
    ids = "C" + pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(7)
    segment = rng.choice(3, size=n, p=[0.35, 0.35, 0.30])
    # Dirichlet habits around the segment's mix, drawn as normalised gamma variates.
    habit = rng.gamma(SEGMENT_CHANNELS[segment] * 25)
    channel_probs = habit / habit.sum(axis=1, keepdims=True)
    taste = rng.normal(size=(n, cfg.factors))
    home = rng.choice(len(world.stores), size=n, p=world.store_weight)
    rate = cfg.sessions_per_month / 30.0 * rng.gamma(2.0, 0.5, size=n)
    # 65% were customers before the window; the rest join during it.
    joined_before = rng.random(n) < 0.65
    created = np.where(
        joined_before, -rng.uniform(0, 3 * 365 * 86_400, n), rng.uniform(0, horizon * 0.8, n)
    )
    active_from = np.maximum(created, 0.0)
    churned = (rng.random(n) < cfg.churn_rate) & (active_from < horizon - 150 * 86_400)
    # Churners stop between 90 days after they became active and 10 days before the end.
    earliest = np.minimum(active_from + 90 * 86_400, horizon - 11 * 86_400)
    churn_at = np.where(
        churned, earliest + rng.random(n) * (horizon - 10 * 86_400 - earliest), horizon
    )
    fade = np.where(churned, churn_at - rng.uniform(30, 90, n) * 86_400, horizon)
    first = np.array(FIRST)[rng.integers(0, len(FIRST), n)]
    last = np.array(LAST)[rng.integers(0, len(LAST), n)]
    email = (
        pd.Series(first).str.lower()
        + "."
        + pd.Series(last).str.lower()
        + ids.str[1:].str.lstrip("0")
        + "@example.com"
    )
    start = pd.Timestamp(cfg.end) - pd.Timedelta(days=cfg.days)
    store_ids = world.stores[c.STORE_ID].to_numpy()
    customers = pd.DataFrame(
        {
            c.CUSTOMER_ID: ids,
            c.NAME: pd.Series(first) + " " + pd.Series(last),
            c.EMAIL: email,
            c.HOME_STORE_ID: store_ids[home],
            c.CONSENT_EMAIL: rng.random(n) < 0.7,
            c.CONSENT_SMS: rng.random(n) < 0.35,
            c.CONSENT_PUSH: rng.random(n) < 0.5,
            c.CREATED_AT: start + pd.to_timedelta(created, unit="s"),
        }
    )
    # 3% also hold a separate loyalty card registered with the same e-mail address.
    has_card = rng.random(n) < 0.03
    loyalty_id = np.where(has_card, "L" + ids.str[1:], "")
    cards = customers[has_card].assign(**{c.CUSTOMER_ID: loyalty_id[has_card]})
    customers = pd.concat([customers, cards], ignore_index=True)
    # Points from outside the event log: a welcome bonus for some (a stream of its own).
    bonus = np.random.default_rng([cfg.seed, 7]).choice([0, 0, 0, 100, 250], len(customers))
    customers[c.LOYALTY_POINTS] = bonus
    tokens = _tokens(rng, n, 4)
    web_cookies = np.stack(["w-" + tokens[0], "w-" + tokens[1]], axis=1).astype(object)
    # Half a percent share their second browser with another customer (a family laptop).
    shared = rng.random(n) < 0.005
    web_cookies[shared, 1] = web_cookies[rng.integers(0, n, shared.sum()), 0]
    consider = _consideration(taste, world, rng)
    truth = pd.DataFrame(
        {
            c.CUSTOMER_ID: ids,
            "loyalty_customer_id": loyalty_id,
            "segment": np.array(SEGMENTS)[segment],
            "sessions_per_month": rate * 30,
            "churned": churned,
            "fade_start": start + pd.to_timedelta(np.where(churned, fade, np.nan), unit="s"),
            "churn_date": start + pd.to_timedelta(np.where(churned, churn_at, np.nan), unit="s"),
            **{f"taste_{j}": taste[:, j] for j in range(cfg.factors)},
        }
    )
    shoppers = Shoppers(
        ids=ids.to_numpy(),
        consent_email=customers[c.CONSENT_EMAIL].to_numpy()[:n].astype(bool),
        consider=consider,
        channel_probs=channel_probs,
        active_from=active_from,
        active_until=churn_at,
        fade_from=fade,
        home_store=home,
        open_rate=rng.beta(2, 5, n),
        rate_per_day=rate,
        loyalty_id=loyalty_id,
        web_cookies=web_cookies,
        device_id=("d-" + pd.Series(tokens[2])).to_numpy(),
        pay_token=("p-" + pd.Series(tokens[3])).to_numpy(),
    )
    return People(customers=customers, truth=truth, shoppers=shoppers)


def _tokens(rng: np.random.Generator, n: int, k: int) -> list[np.ndarray]:
    raw = rng.integers(0, 2**48, size=(k, n), dtype=np.int64)
    return [pd.Series(row).map("{:012x}".format).to_numpy() for row in raw]


def _consideration(taste: np.ndarray, world: World, rng: np.random.Generator) -> np.ndarray:
    """Each customer's top items by taste x item factors + popularity + noise (Gumbel top-k)."""
    n_items = len(world.item_bias)
    m = min(CONSIDERATION, n_items)
    out = np.empty((len(taste), m), dtype=np.int64)
    scale = TASTE_WEIGHT / np.sqrt(taste.shape[1])
    for lo in range(0, len(taste), 2048):
        block = taste[lo : lo + 2048] @ world.item_factors.T * scale + world.item_bias
        block += rng.gumbel(size=block.shape)
        top = np.argpartition(-block, m - 1, axis=1)[:, :m]
        order = np.argsort(-np.take_along_axis(block, top, axis=1), axis=1)
        out[lo : lo + 2048] = np.take_along_axis(top, order, axis=1)
    return out
