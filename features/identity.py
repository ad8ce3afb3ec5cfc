"""Identity stitching: which anonymous ids and customer ids are one person.

The rule, in order:

1. Customer ids that share an identifier (today: the same e-mail address, case and
   surrounding spaces ignored) are one person. This is transitive: if A shares an address
   with B and B with C, all three are one person. The person's id is the smallest
   customer id of the group (a stable, documented choice).
2. An anonymous id (cookie, device, payment token) seen together with a customer id --
   in an `identify` event or any event carrying both -- belongs to that customer's person.
3. A conflict: an anonymous id seen with two or more persons (a shared family tablet).
   It is never used to merge those persons. It is given to the person it was linked to
   first (earliest event; then most links; then smallest id) and flagged as a conflict.

Person ids are stable (`keep_person_ids`): once given, a person keeps their id when
another customer id joins them (a loyalty card with the same e-mail address, whatever its
number); when two persons merge, the one holding more ids keeps theirs and the other's
ledgers move to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from features import columns as c

CUSTOMER = "customer"
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class IdentityMap:
    """Every known id and its person: columns id_type, id_value, person_id, conflict."""

    frame: pd.DataFrame

    @property
    def conflicts(self) -> int:
        """Anonymous ids seen with more than one person."""
        return int(self.frame["conflict"].sum())

    @property
    def stitched_anonymous(self) -> int:
        """Anonymous ids linked to a person."""
        return int((self.frame[c.ID_TYPE] == ANONYMOUS).sum())

    @property
    def merged_customers(self) -> int:
        """Customer ids folded into another customer's person."""
        cust = self.frame[self.frame[c.ID_TYPE] == CUSTOMER]
        return int((cust[c.ID_VALUE] != cust[c.PERSON_ID]).sum())


def stitch(links: pd.DataFrame, customers: pd.DataFrame) -> IdentityMap:
    """Build the identity map.

    `links`: one row per (customer_id, anonymous_id) pair seen together, with `first_ts`
    (when first seen together) and `n` (how often). `customers`: customer_id and email.
    Returns an `IdentityMap`; raises nothing on odd input (unknown ids simply appear).
    """
    person_of = _persons(links, customers)
    cust_rows = pd.DataFrame(
        {
            c.ID_TYPE: CUSTOMER,
            c.ID_VALUE: person_of.index,
            c.PERSON_ID: person_of.to_numpy(),
            "conflict": False,
        }
    )
    anon_rows = _anonymous(links, person_of)
    frame = pd.concat([cust_rows, anon_rows], ignore_index=True)
    return IdentityMap(frame.astype({"conflict": bool}))


def _persons(links: pd.DataFrame, customers: pd.DataFrame) -> pd.Series:
    """customer_id -> person_id, merging customers that share an e-mail address."""
    ids = pd.Index(
        pd.concat([links[c.CUSTOMER_ID], customers[c.CUSTOMER_ID]]).dropna().astype(str).unique()
    ).sort_values()
    if len(ids) == 0:
        return pd.Series([], dtype=object, name=c.PERSON_ID)
    emails = customers[[c.CUSTOMER_ID, c.EMAIL]].dropna()
    emails = emails.assign(key=emails[c.EMAIL].astype(str).str.strip().str.lower())
    emails = emails[emails["key"] != ""]
    # Connect each customer to the first customer with the same address.
    first = emails.groupby("key")[c.CUSTOMER_ID].transform("first")
    src = ids.get_indexer(emails[c.CUSTOMER_ID].astype(str))
    dst = ids.get_indexer(first.astype(str))
    n = len(ids)
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # The person id is the smallest customer id of its component (ids are sorted).
    smallest = pd.Series(np.arange(n)).groupby(labels).transform("min").to_numpy()
    return pd.Series(ids[smallest], index=ids, name=c.PERSON_ID)


def _anonymous(links: pd.DataFrame, person_of: pd.Series) -> pd.DataFrame:
    pairs = links.dropna(subset=[c.CUSTOMER_ID, c.ANONYMOUS_ID])
    if pairs.empty:
        return pd.DataFrame(columns=[c.ID_TYPE, c.ID_VALUE, c.PERSON_ID, "conflict"])
    pairs = pairs.assign(person=person_of.reindex(pairs[c.CUSTOMER_ID].astype(str)).to_numpy())
    per_person = pairs.groupby([c.ANONYMOUS_ID, "person"], as_index=False).agg(
        first_ts=("first_ts", "min"), n=("n", "sum")
    )
    per_person = per_person.sort_values(
        [c.ANONYMOUS_ID, "first_ts", "n", "person"], ascending=[True, True, False, True]
    )
    persons_seen = per_person.groupby(c.ANONYMOUS_ID)["person"].transform("size")
    chosen = per_person.assign(conflict=persons_seen > 1).drop_duplicates(c.ANONYMOUS_ID)
    return pd.DataFrame(
        {
            c.ID_TYPE: ANONYMOUS,
            c.ID_VALUE: chosen[c.ANONYMOUS_ID].astype(str).to_numpy(),
            c.PERSON_ID: chosen["person"].to_numpy(),
            "conflict": chosen["conflict"].to_numpy(),
        }
    )


def keep_person_ids(
    frame: pd.DataFrame, previous: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The map `frame` (a fresh `stitch`) with the person ids of the map before it
    (`previous`, the same columns) where the same people are: each new person takes the
    earlier person id most of their ids held (ties: the smallest), each earlier id goes to
    one person at most; a new person with none keeps the id `stitch` gave (suffixed in the
    rare case another person holds it). Also returns the moves: every earlier person id
    that is no one's now, with the person most of its ids went to."""
    if previous.empty or frame.empty:
        return frame, {}

    def keys(f: pd.DataFrame) -> pd.Series:
        return f[c.ID_TYPE].astype(str) + "\x00" + f[c.ID_VALUE].astype(str)

    before = pd.Series(previous[c.PERSON_ID].astype(str).to_numpy(), index=keys(previous))
    held = keys(frame).map(before)
    fresh = frame[c.PERSON_ID].astype(str)
    votes = (
        pd.DataFrame({"new": fresh, "old": held})
        .dropna()
        .groupby(["new", "old"], as_index=False)
        .size()
        .sort_values(["size", "old", "new"], ascending=[False, True, True])
    )
    chosen: dict[str, str] = {}
    taken: set[str] = set()
    for new, old in zip(votes["new"], votes["old"], strict=True):
        if new not in chosen and old not in taken:
            chosen[new], taken = old, taken | {old}
    for new in sorted(set(fresh) - set(chosen)):
        name, n = new, 1
        while name in taken:
            n += 1
            name = f"{new}~{n}"
        chosen[new], taken = name, taken | {name}
    stable = frame.assign(**{c.PERSON_ID: fresh.map(chosen).to_numpy()})
    now = pd.Series(stable[c.PERSON_ID].to_numpy(), index=keys(stable))
    went = pd.DataFrame(
        {"old": before.to_numpy(), "new": now.reindex(before.index).to_numpy()}
    ).dropna()
    gone = went[~went["old"].isin(set(stable[c.PERSON_ID]))]
    moves = (
        gone.groupby(["old", "new"], as_index=False)
        .size()
        .sort_values(["size", "new"], ascending=[False, True])
        .drop_duplicates("old")
    )
    return stable, dict(zip(moves["old"], moves["new"], strict=True))


def resolve(events: pd.DataFrame, identities: pd.DataFrame) -> pd.Series:
    """The person behind each event: via its customer_id, else its anonymous_id, else
    missing; a customer id never stitched is its own person. Categorical, worked out per
    distinct id (the columns' categories when they are categorical), never per row."""
    by_type = {
        kind: grp.set_index(c.ID_VALUE)[c.PERSON_ID] for kind, grp in identities.groupby(c.ID_TYPE)
    }
    empty = pd.Series(dtype=object)
    customer = pd.Categorical(events[c.CUSTOMER_ID])
    anonymous = pd.Categorical(events[c.ANONYMOUS_ID])
    own = pd.Series(customer.categories.to_numpy(dtype=object), index=customer.categories)
    of_customer = by_type.get(CUSTOMER, empty).reindex(customer.categories)
    of_customer = of_customer.where(of_customer.notna(), own)
    of_anonymous = by_type.get(ANONYMOUS, empty).reindex(anonymous.categories)
    both = np.concatenate([of_customer.to_numpy(dtype=object), of_anonymous.to_numpy(dtype=object)])
    codes, persons = pd.factorize(both)
    codes = codes.astype(np.int64)
    split = len(customer.categories)
    person = np.where(
        customer.codes >= 0,
        _take(codes[:split], customer.codes),
        _take(codes[split:], anonymous.codes),
    )
    return pd.Series(
        pd.Categorical.from_codes(person, categories=pd.Index(persons, dtype=object)),
        index=events.index,
        name=c.PERSON_ID,
    )


def _take(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """values[at], -1 where `at` is -1 (missing)."""
    if not len(values):
        return np.full(len(at), -1, dtype=np.int64)
    out: np.ndarray = np.where(at >= 0, values[np.maximum(at, 0)], -1)
    return out
