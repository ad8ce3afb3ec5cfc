"""Identity stitching: transitive links, shared e-mail addresses, and the conflict rule."""

from __future__ import annotations

import pandas as pd

from features.identity import stitch


def links(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(cust, anon, ts, 1) for cust, anon, ts in rows],
        columns=["customer_id", "anonymous_id", "first_ts", "n"],
    )


def person_of(identity: pd.DataFrame, kind: str, value: str) -> str:
    row = identity[(identity["id_type"] == kind) & (identity["id_value"] == value)]
    return str(row["person_id"].iloc[0])


def test_web_app_and_store_ids_become_one_person() -> None:
    # A web cookie identifies as C1; the loyalty card L9 shares C1's e-mail;
    # a payment token was seen with the loyalty card at the till.
    customers = pd.DataFrame({"customer_id": ["C1", "L9"], "email": ["ana@x.eu", " ANA@x.eu "]})
    stitched = stitch(
        links([("C1", "cookie", 1), ("C1", "device", 2), ("L9", "token", 3)]), customers
    )
    frame = stitched.frame
    ids = [
        ("anonymous", "cookie"),
        ("anonymous", "device"),
        ("anonymous", "token"),
        ("customer", "L9"),
    ]
    assert {person_of(frame, k, v) for k, v in ids} == {"C1"}
    assert stitched.merged_customers == 1
    assert stitched.conflicts == 0


def test_merging_is_transitive_through_a_chain_of_addresses() -> None:
    customers = pd.DataFrame({"customer_id": ["C3", "C2", "C1"], "email": ["a@x", "a@x", None]})
    stitched = stitch(links([("C3", "w", 1)]), customers)
    assert person_of(stitched.frame, "customer", "C3") == "C2"
    assert person_of(stitched.frame, "anonymous", "w") == "C2"
    assert person_of(stitched.frame, "customer", "C1") == "C1"


def test_a_shared_device_never_merges_two_customers() -> None:
    customers = pd.DataFrame({"customer_id": ["C1", "C2"], "email": ["a@x", "b@x"]})
    # The family laptop was used by C2 first, then by C1 (twice).
    stitched = stitch(
        links([("C2", "laptop", 5), ("C1", "laptop", 9), ("C1", "laptop", 12)]), customers
    )
    frame = stitched.frame
    assert person_of(frame, "customer", "C1") == "C1"
    assert person_of(frame, "customer", "C2") == "C2"
    assert person_of(frame, "anonymous", "laptop") == "C2"  # first linked wins
    assert stitched.conflicts == 1
    assert bool(frame.loc[frame["id_value"] == "laptop", "conflict"].iloc[0])


def test_no_links_gives_customers_only() -> None:
    stitched = stitch(links([]), pd.DataFrame({"customer_id": ["C1"], "email": [None]}))
    assert stitched.frame[["id_type", "id_value", "person_id"]].values.tolist() == [
        ["customer", "C1", "C1"]
    ]
    assert stitched.stitched_anonymous == 0
