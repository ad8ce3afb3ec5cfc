"""Shopping journeys across channels, drawn for all customers at once (vectorised).

What happens, so that tests and models can rely on it:

- Sessions follow each customer's rate and channel habits; a churner's sessions thin out
  over 30-90 days (and convert half as often), then stop at the churn date.
- Web and app sessions: optional search, views of considered items, wish-lists, carts.
  Carts are bought in the session, removed, or abandoned; an abandoned cart is sometimes
  bought later in the customer's home store or online.
- Web identity: logged in; anonymous until an `identify` just before the first cart; or
  anonymous throughout (such carts are never bought). App sessions are logged in.
- Store visits: purchases at the home store (mostly), with the loyalty card (customer id,
  sometimes with the payment token too) or with the payment token alone; some visits
  view an item that is bought online days later (try in store, buy online).
- Click & collect: some online orders carry the pickup store's id.
- E-mail opens and clicks for consenting customers, clicks leading to a web view.
- Returns of some purchases, in store or in the original channel.
- Durable goods (furniture, electronics, lighting, kitchen, outdoor) are bought once per
  customer: a later purchase of the same durable item is not made. Everything else can
  come back (favourites bought again in store, groceries and beauty among them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import columns as c
from features.synthetic.config import SyntheticConfig
from features.synthetic.people import Shoppers
from features.synthetic.world import World

DAY = 86_400.0
Block = dict[str, np.ndarray]
#: Categories whose items a customer buys once (see the module's docstring).
DURABLE = ("Furniture", "Electronics", "Lighting", "Kitchen", "Outdoor")


def make_events(
    cfg: SyntheticConfig,
    world: World,
    shoppers: Shoppers,
    rng: np.random.Generator,
    id_prefix: str,
) -> pd.DataFrame:
    """All events of these shoppers over the window, in time order, ids `<id_prefix><n>`."""
    sessions = _sessions(shoppers, rng)
    online = sessions["channel"] < 2
    ev = _concat(
        [
            *_online_sessions(_take(sessions, online), world, shoppers, rng),
            *_store_visits(_take(sessions, ~online), world, shoppers, rng),
            *_email(shoppers, rng),
        ]
    )
    ev = _take(ev, ~_durable_again(ev, world))
    purchases = _take(ev, ev["type"] == c.EventType.PURCHASE.value)
    ev = _concat([ev, _returns(purchases, shoppers, rng)])
    keep = (ev["t"] < shoppers.active_until[ev["cust"]]) & (ev["t"] >= 0)
    frame = _frame(cfg, world, {k: v[keep] for k, v in ev.items()}, rng, id_prefix)
    # Drawn from streams of their own: the events above are the same with or without.
    wishes_rng, service_rng = rng.spawn(2)
    start = pd.Timestamp(cfg.end) - pd.Timedelta(days=cfg.days)
    frame = _unwished(frame, pd.Timestamp(cfg.end), wishes_rng, id_prefix)
    cases = _service_cases(shoppers, start, pd.Timestamp(cfg.end), service_rng, id_prefix)
    both = pd.concat([frame, cases], ignore_index=True) if len(cases) else frame
    return both.sort_values(c.TS, kind="stable", ignore_index=True)


#: Complaint reasons and service questions, and the channels service is reached in.
COMPLAINTS = ("late delivery", "damaged item", "wrong size sent", "refund not received",
              "rude staff", "item out of stock after ordering")  # fmt: skip
QUESTIONS = ("where is my order", "change delivery address", "product question",
             "loyalty points missing")  # fmt: skip
SERVICE_CHANNELS = np.array(
    [c.Channel.CALL_CENTER.value, c.Channel.EMAIL.value, c.Channel.SOCIAL.value]
)
#: Who complains: of customers who leave within the window, this share complains in the
#: weeks before they go (a known churn driver); of the others, this share at some point.
COMPLAIN_BEFORE_LEAVING, COMPLAIN_ANYWAY, ASK_SHARE = 0.35, 0.05, 0.12


def _service_cases(
    shoppers: Shoppers,
    start: pd.Timestamp,
    end: pd.Timestamp,
    rng: np.random.Generator,
    id_prefix: str,
) -> pd.DataFrame:
    """Complaints (many before a customer leaves) and service questions, each opened in a
    service channel and mostly resolved a few days later (a second event, same case)."""
    n = len(shoppers)
    window = (end - start).total_seconds()
    leaving = shoppers.active_until < window - 86_400
    complains = rng.random(n) < np.where(leaving, COMPLAIN_BEFORE_LEAVING, COMPLAIN_ANYWAY)
    asks = rng.random(n) < ASK_SHARE
    lo, hi = shoppers.active_from, np.minimum(shoppers.active_until, window)
    # A leaver complains 5-45 days before going; anyone else at any time they are active.
    before = hi - rng.uniform(5, 45, n) * 86_400
    any_time = lo + rng.random(n) * np.maximum(hi - lo, 0)
    opened = np.concatenate([np.where(leaving, before, any_time)[complains],
                             (lo + rng.random(n) * np.maximum(hi - lo, 0))[asks]])  # fmt: skip
    who = np.concatenate([np.flatnonzero(complains), np.flatnonzero(asks)])
    kind = np.array([c.EventType.COMPLAINT.value] * int(complains.sum())
                    + [c.EventType.SERVICE_CONTACT.value] * int(asks.sum()))  # fmt: skip
    said = rng.choice(COMPLAINTS, len(kind)), rng.choice(QUESTIONS, len(kind))
    reason = np.where(kind == c.EventType.COMPLAINT.value, *said)
    channel = rng.choice(SERVICE_CHANNELS, len(kind), p=[0.5, 0.35, 0.15])
    keep = (opened >= lo[who]) & (opened >= 0)
    who, kind, reason, channel, opened = (
        who[keep],
        kind[keep],
        reason[keep],
        channel[keep],
        opened[keep],
    )
    case_ids = id_prefix + "k" + pd.Series(np.arange(1, len(who) + 1)).astype(str).str.zfill(7)
    # Most are resolved within a week; some complaints stay open.
    resolved = rng.random(len(who)) < np.where(kind == c.EventType.COMPLAINT.value, 0.7, 0.95)
    closed_at = opened + rng.uniform(0.2, 7, len(who)) * 86_400
    resolved &= closed_at < hi[who]  # a customer gone by then never hears back
    first = pd.DataFrame({c.EVENT_ID: case_ids + "-1", "t": opened, c.CASE_ID: case_ids,
                          c.STATUS: c.CaseStatus.OPEN.value})  # fmt: skip
    second = pd.DataFrame({c.EVENT_ID: case_ids + "-2", "t": closed_at, c.CASE_ID: case_ids,
                           c.STATUS: c.CaseStatus.RESOLVED.value})[resolved]  # fmt: skip
    base = pd.DataFrame({c.CUSTOMER_ID: shoppers.ids[who], c.CHANNEL: channel, c.TYPE: kind,
                         c.REASON: reason})  # fmt: skip
    both = pd.concat([pd.concat([first, base], axis=1),
                      pd.concat([second, base[resolved]], axis=1)], ignore_index=True)  # fmt: skip
    both[c.TS] = (start + pd.to_timedelta(both.pop("t"), unit="s")).dt.floor("ms")
    return both


#: Share of wishes taken off the list later, and the mean days until they are.
UNWISH_SHARE, UNWISH_DAYS = 0.25, 12.0


def _unwished(
    frame: pd.DataFrame, end: pd.Timestamp, rng: np.random.Generator, id_prefix: str
) -> pd.DataFrame:
    """The events with some wishes removed again later in the same channel (a
    `wishlist_remove` each, before the window ends), in time order."""
    wishes = frame[frame[c.TYPE] == c.EventType.WISHLIST.value]
    chosen = wishes[rng.random(len(wishes)) < UNWISH_SHARE]
    later = pd.to_timedelta(rng.exponential(UNWISH_DAYS, len(chosen)) * 86_400, unit="s")
    removals = chosen.assign(
        **{c.TS: (chosen[c.TS] + later.to_numpy()).dt.floor("ms"),
           c.TYPE: c.EventType.WISHLIST_REMOVE.value}
    )  # fmt: skip
    removals = removals[removals[c.TS] < end]
    removals[c.EVENT_ID] = (
        id_prefix
        + "w"
        + pd.Series(np.arange(1, len(removals) + 1), index=removals.index).astype(str).str.zfill(7)
    )
    both = pd.concat([frame, removals], ignore_index=True)
    return both.sort_values(c.TS, kind="stable", ignore_index=True)


def _durable_again(ev: Block, world: World) -> np.ndarray:
    """True for each purchase of a durable item its customer bought before."""
    durable = np.isin(world.catalogue[c.CATEGORY].to_numpy(), DURABLE)
    rows = np.flatnonzero(
        (ev["type"] == c.EventType.PURCHASE.value) & (ev["item"] >= 0) & durable[ev["item"]]
    )
    order = rows[np.lexsort((ev["t"][rows], ev["item"][rows], ev["cust"][rows]))]
    later = np.zeros(len(order), dtype=bool)
    same = (ev["cust"][order][1:] == ev["cust"][order][:-1]) & (
        ev["item"][order][1:] == ev["item"][order][:-1]
    )
    later[1:] = same
    out = np.zeros(len(ev["t"]), dtype=bool)
    out[order[later]] = True
    return out


def _or_none(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`values` where `mask` holds, None elsewhere (an object array, for optional ids)."""
    out = np.full(len(mask), None, dtype=object)
    out[mask] = np.asarray(values)[mask]
    return out


def _take(block: Block, mask: np.ndarray) -> Block:
    return {k: v[mask] for k, v in block.items()}


def _concat(blocks: list[Block]) -> Block:
    return {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}


def _sessions(shoppers: Shoppers, rng: np.random.Generator) -> Block:
    span = shoppers.active_until - shoppers.active_from
    counts = rng.poisson(shoppers.rate_per_day * span / DAY)
    cust = np.repeat(np.arange(len(span)), counts)
    t = shoppers.active_from[cust] + rng.random(len(cust)) * span[cust]
    fading = t > shoppers.fade_from[cust]
    fade_len = np.maximum(shoppers.active_until - shoppers.fade_from, 1.0)[cust]
    keep_p = np.where(fading, 1 - 0.85 * (t - shoppers.fade_from[cust]) / fade_len, 1.0)
    keep = rng.random(len(t)) < keep_p
    cum = shoppers.channel_probs.cumsum(axis=1)[cust[keep]]
    channel = (rng.random(keep.sum())[:, None] > cum).sum(axis=1).clip(0, 2)
    return {
        "cust": cust[keep],
        "t": t[keep],
        "conv": np.where(fading[keep], 0.5, 1.0),
        "channel": channel,
        "id": np.arange(keep.sum()),
    }


def _event(n: int, **cols: np.ndarray | str | int | float) -> Block:
    """A block of n events; missing columns get their empty value."""
    empty: dict[str, object] = {
        "item": -1,
        "qty": 0,
        "store": -1,
        "order": None,
        "cid": None,
        "aid": None,
    }
    out: Block = {}
    for key in ("t", "cust", "channel", "type", "item", "qty", "store", "order", "cid", "aid"):
        value = cols.get(key, empty.get(key))
        arr = np.asarray(value)
        out[key] = (
            arr
            if arr.shape == (n,)
            else np.full(
                n, value, dtype=object if arr.dtype.kind in "OU" or value is None else arr.dtype
            )
        )
    return out


def _draw_items(
    shoppers: Shoppers, cust: np.ndarray, rng: np.random.Generator, top: int | None = None
) -> np.ndarray:
    m = shoppers.consider.shape[1] if top is None else min(top, shoppers.consider.shape[1])
    pos = np.floor(m * rng.random(len(cust)) ** 2.2).astype(int)
    drawn: np.ndarray = shoppers.consider[cust, pos]
    return drawn


def _online_sessions(
    s: Block, world: World, shoppers: Shoppers, rng: np.random.Generator
) -> list[Block]:
    ids = shoppers.ids
    n_s = len(s["t"])
    channel = np.where(s["channel"] == 0, c.Channel.WEB.value, c.Channel.APP.value)
    is_web = s["channel"] == 0
    # Identity mode: 0 logged in, 1 anonymous until identify at first cart, 2 anonymous.
    mode = np.where(is_web, rng.choice(3, size=n_s, p=[0.55, 0.30, 0.15]), 0)
    cookie = shoppers.web_cookies[s["cust"], (rng.random(n_s) < 0.2).astype(int)]
    anon = np.where(is_web, cookie, shoppers.device_id[s["cust"]])
    nv = 1 + rng.poisson(2.0, n_s)
    row_s = np.repeat(np.arange(n_s), nv)
    within = np.arange(len(row_s)) - np.repeat(np.cumsum(nv) - nv, nv)
    cust = s["cust"][row_s]
    item = _draw_items(shoppers, cust, rng)
    t_view = s["t"][row_s] + within * 45.0 + rng.random(len(row_s)) * 30
    cart = rng.random(len(row_s)) < 0.18
    t_cart = t_view + 20.0
    first_cart = np.full(n_s, np.inf)
    np.minimum.at(first_cart, row_s[cart], t_cart[cart])
    t_identify = first_cart - 5.0
    buy = cart & (rng.random(len(row_s)) < 0.45 * s["conv"][row_s]) & (mode[row_s] != 2)
    removed = cart & ~buy & (rng.random(len(row_s)) < 0.12)
    abandoned = cart & ~buy & ~removed & (mode[row_s] != 2)
    later = rng.random(len(row_s))
    later_store = abandoned & (later < 0.3)
    later_online = abandoned & (later >= 0.3) & (later < 0.45)
    t_end = s["t"] + nv * 45.0 + 60.0
    home = shoppers.home_store[cust]
    collect = rng.random(n_s) < 0.2

    def ids_at(t: np.ndarray, rows: np.ndarray) -> np.ndarray:
        m = mode[rows]
        known = (m == 0) | ((m == 1) & (t >= t_identify[rows]))
        return _or_none(known, ids[s["cust"][rows]])

    def block(mask: np.ndarray, t: np.ndarray, kind: str, **extra: np.ndarray | str) -> Block:
        rows = row_s[mask]
        return _event(
            int(mask.sum()),
            t=t[mask],
            cust=cust[mask],
            channel=channel[rows],
            type=kind,
            item=item[mask],
            cid=ids_at(t[mask], rows),
            aid=anon[rows],
            **extra,
        )

    search = rng.random(n_s) < 0.3
    identified = (mode == 1) & np.isfinite(first_cart)
    wish = rng.random(len(row_s)) < 0.04
    order = np.char.add("o", s["id"].astype(str)).astype(object)
    pickup = np.where(collect[row_s], home, -1)
    later_ids = np.where(shoppers.loyalty_id[cust] != "", shoppers.loyalty_id[cust], ids[cust])
    return [
        _event(
            int(search.sum()),
            t=s["t"][search] - 10,
            cust=s["cust"][search],
            channel=channel[search],
            type=c.EventType.SEARCH.value,
            cid=_or_none(mode[search] == 0, ids[s["cust"][search]]),
            aid=anon[search],
        ),
        _event(
            int(identified.sum()),
            t=t_identify[identified],
            cust=s["cust"][identified],
            channel=channel[identified],
            type=c.EventType.IDENTIFY.value,
            cid=ids[s["cust"][identified]],
            aid=anon[identified],
        ),
        block(np.ones(len(row_s), bool), t_view, c.EventType.VIEW.value),
        block(wish, t_view + 10, c.EventType.WISHLIST.value),
        block(cart, t_cart, c.EventType.ADD_TO_CART.value, qty=np.ones(cart.sum(), int)),
        block(removed, t_cart + 30, c.EventType.REMOVE_FROM_CART.value),
        block(
            buy,
            t_end[row_s],
            c.EventType.PURCHASE.value,
            qty=np.ones(buy.sum(), int),
            order=order[row_s][buy],
            store=pickup[buy],
        ),
        _event(
            int(later_store.sum()),
            t=t_cart[later_store] + rng.uniform(1, 4, later_store.sum()) * DAY,
            cust=cust[later_store],
            channel=c.Channel.STORE.value,
            type=c.EventType.PURCHASE.value,
            item=item[later_store],
            qty=1,
            store=home[later_store],
            cid=later_ids[later_store],
            order=np.char.add(order[row_s][later_store].astype(str), "s").astype(object),
        ),
        _event(
            int(later_online.sum()),
            t=t_cart[later_online] + rng.uniform(1, 3, later_online.sum()) * DAY,
            cust=cust[later_online],
            channel=c.Channel.WEB.value,
            type=c.EventType.PURCHASE.value,
            item=item[later_online],
            qty=1,
            cid=ids[cust[later_online]],
            aid=shoppers.web_cookies[cust[later_online], 0],
            order=np.char.add(order[row_s][later_online].astype(str), "w").astype(object),
        ),
    ]


def _store_visits(
    s: Block, world: World, shoppers: Shoppers, rng: np.random.Generator
) -> list[Block]:
    ids = shoppers.ids
    n_s = len(s["t"])
    np_ = 1 + rng.poisson(1.5, n_s)
    row_s = np.repeat(np.arange(n_s), np_)
    within = np.arange(len(row_s)) - np.repeat(np.cumsum(np_) - np_, np_)
    cust = s["cust"][row_s]
    favourite = rng.random(len(row_s)) < 0.5
    item = np.where(
        favourite, _draw_items(shoppers, cust, rng, top=10), _draw_items(shoppers, cust, rng)
    )
    away = rng.random(n_s) < 0.15
    store = np.where(
        away,
        rng.choice(len(world.stores), n_s, p=world.store_weight),
        shoppers.home_store[s["cust"]],
    )
    card = rng.random(n_s) < 0.8
    own_id = np.where(
        shoppers.loyalty_id[s["cust"]] != "", shoppers.loyalty_id[s["cust"]], ids[s["cust"]]
    )
    token = shoppers.pay_token[s["cust"]]
    cid = _or_none(card, own_id)
    aid = _or_none(~card | (rng.random(n_s) < 0.1), token)
    order = np.char.add("v", s["id"].astype(str)).astype(object)
    tried = rng.random(n_s) < 0.06
    tried_item = _draw_items(shoppers, s["cust"][tried], rng)
    bought_online = rng.random(tried.sum()) < 0.5
    t_online = s["t"][tried] + rng.uniform(1, 5, tried.sum()) * DAY
    tc = s["cust"][tried]
    return [
        _event(
            len(row_s),
            t=s["t"][row_s] + within * 20.0,
            cust=cust,
            channel=c.Channel.STORE.value,
            type=c.EventType.PURCHASE.value,
            item=item,
            qty=1 + rng.poisson(0.3, len(row_s)),
            store=store[row_s],
            order=order[row_s],
            cid=cid[row_s],
            aid=aid[row_s],
        ),
        _event(
            int(tried.sum()),
            t=s["t"][tried] - 300,
            cust=tc,
            channel=c.Channel.STORE.value,
            type=c.EventType.VIEW.value,
            item=tried_item,
            store=store[tried],
            cid=cid[tried],
            aid=aid[tried],
        ),
        _event(
            int(bought_online.sum()),
            t=t_online[bought_online],
            cust=tc[bought_online],
            channel=c.Channel.WEB.value,
            type=c.EventType.PURCHASE.value,
            item=tried_item[bought_online],
            qty=1,
            cid=ids[tc[bought_online]],
            aid=shoppers.web_cookies[tc[bought_online], 0],
            order=np.char.add(order[tried][bought_online].astype(str), "t").astype(object),
        ),
    ]


def _email(shoppers: Shoppers, rng: np.random.Generator) -> list[Block]:
    ids = shoppers.ids
    consent = shoppers.consent_email
    span = shoppers.active_until - shoppers.active_from
    counts = np.where(consent, rng.poisson(shoppers.open_rate * span / (7 * DAY)), 0)
    cust = np.repeat(np.arange(len(ids)), counts)
    t = shoppers.active_from[cust] + rng.random(len(cust)) * span[cust]
    fade_len = np.maximum(shoppers.active_until - shoppers.fade_from, 1.0)[cust]
    fading = t > shoppers.fade_from[cust]
    keep_p = np.where(fading, (1 - (t - shoppers.fade_from[cust]) / fade_len) ** 1.5, 1.0)
    keep = rng.random(len(t)) < keep_p
    cust, t = cust[keep], t[keep]
    click = rng.random(len(t)) < 0.3
    item = _draw_items(shoppers, cust[click], rng)
    visit = rng.random(click.sum()) < 0.6
    cc = cust[click]
    return [
        _event(
            len(t),
            t=t,
            cust=cust,
            channel=c.Channel.EMAIL.value,
            type=c.EventType.EMAIL_OPEN.value,
            cid=ids[cust],
        ),
        _event(
            int(click.sum()),
            t=t[click] + 60,
            cust=cc,
            channel=c.Channel.EMAIL.value,
            type=c.EventType.EMAIL_CLICK.value,
            item=item,
            cid=ids[cc],
        ),
        _event(
            int(visit.sum()),
            t=t[click][visit] + 120,
            cust=cc[visit],
            channel=c.Channel.WEB.value,
            type=c.EventType.VIEW.value,
            item=item[visit],
            cid=ids[cc[visit]],
            aid=shoppers.web_cookies[cc[visit], 0],
        ),
    ]


def _returns(p: Block, shoppers: Shoppers, rng: np.random.Generator) -> Block:
    back = rng.random(len(p["t"])) < 0.07
    r = _take(p, back)
    in_store = rng.random(len(r["t"])) < 0.5
    store = np.where(in_store, shoppers.home_store[r["cust"]], r["store"])
    channel = np.where(in_store, c.Channel.STORE.value, r["channel"]).astype(object)
    r.update(
        t=r["t"] + rng.uniform(3, 25, len(r["t"])) * DAY,
        type=np.full(len(r["t"]), c.EventType.RETURN.value, dtype=object),
        store=store,
        channel=channel,
    )
    r["store"] = np.where(channel == c.Channel.STORE.value, store, r["store"])
    return r


def _frame(
    cfg: SyntheticConfig, world: World, ev: Block, rng: np.random.Generator, id_prefix: str
) -> pd.DataFrame:
    start = pd.Timestamp(cfg.end) - pd.Timedelta(days=cfg.days)
    order = np.lexsort((ev["cust"], ev["t"]))
    ev = {k: v[order] for k, v in ev.items()}
    n = len(ev["t"])
    has_item = ev["item"] >= 0
    items = world.catalogue[c.ITEM_ID].to_numpy()
    prices = world.catalogue[c.PRICE].to_numpy()
    stores = world.stores[c.STORE_ID].to_numpy()
    priced = has_item & np.isin(ev["type"], [c.EventType.PURCHASE.value, c.EventType.RETURN.value])
    discount = np.where(rng.random(n) < 0.1, 0.8, 1.0)
    qty = ev["qty"].astype(int)
    return pd.DataFrame(
        {
            c.EVENT_ID: id_prefix + pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(8),
            c.TS: (start + pd.to_timedelta(ev["t"], unit="s")).floor("ms"),
            c.CUSTOMER_ID: ev["cid"],
            c.ANONYMOUS_ID: ev["aid"],
            c.CHANNEL: ev["channel"].astype(str),
            c.TYPE: ev["type"].astype(str),
            c.ITEM_ID: _or_none(has_item, items[np.maximum(ev["item"], 0)]),
            c.QUANTITY: pd.Series(qty).where(qty > 0).astype("Int64").array,
            c.PRICE: np.where(
                priced, np.round(prices[np.maximum(ev["item"], 0)] * discount, 2), np.nan
            ),
            c.STORE_ID: _or_none(ev["store"] >= 0, stores[np.maximum(ev["store"], 0)]),
            c.ORDER_ID: ev["order"],
        }
    )
