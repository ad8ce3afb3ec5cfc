"""Identity stitching: transitive links, shared e-mail addresses, and the conflict rule."""

from __future__ import annotations

import pandas as pd

from features.identity import keep_person_ids, stitch


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


def test_a_person_keeps_their_id_when_a_smaller_customer_id_joins_them() -> None:
    before = stitch(links([("C5", "cookie", 1)]), pd.DataFrame({"customer_id": ["C5", "C7"],
                    "email": ["ana@x.eu", "bo@x.eu"]})).frame  # fmt: skip
    # A loyalty card C1 with Ana's address arrives: stitching alone would rename her C1.
    customers = pd.DataFrame(
        {"customer_id": ["C1", "C5", "C7"], "email": ["ana@x.eu", "ana@x.eu", "bo@x.eu"]}
    )
    fresh = stitch(links([("C5", "cookie", 1)]), customers).frame
    assert person_of(fresh, "customer", "C5") == "C1"
    stable, moves = keep_person_ids(fresh, before)
    assert {person_of(stable, "customer", v) for v in ("C1", "C5")} == {"C5"}
    assert person_of(stable, "anonymous", "cookie") == "C5"
    assert person_of(stable, "customer", "C7") == "C7" and moves == {}


def test_when_two_persons_merge_the_one_with_more_ids_keeps_theirs() -> None:
    customers = pd.DataFrame({"customer_id": ["C2", "C3"], "email": ["ana@x.eu", "bo@x.eu"]})
    two = links([("C3", "cookie", 1), ("C3", "device", 2), ("C2", "token", 3)])
    before = stitch(two, customers).frame
    merged = stitch(two, customers.assign(email="ana@x.eu")).frame  # one address now
    stable, moves = keep_person_ids(merged, before)
    assert set(stable["person_id"]) == {"C3"}  # three ids against two
    assert moves == {"C2": "C3"}
    # A person new since needs no earlier id.
    newcomer = stitch(two, pd.concat([customers, pd.DataFrame({"customer_id": ["C0"],
                      "email": ["cy@x.eu"]})])).frame  # fmt: skip
    again, moves = keep_person_ids(newcomer, before)
    assert person_of(again, "customer", "C0") == "C0" and moves == {}
