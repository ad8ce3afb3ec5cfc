"""Where an item is: `GET /v1/items/{id}/availability` answers every store and online,
nearest first, from the stock the store holds."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.availability import Availability, Stocked, availability, distance_km, in_words
from service.shelf import Place
from tests.conftest import ADMIN_KEY, TABLET_KEY, ServedStore

ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture(scope="module")
def client(served_store: ServedStore) -> TestClient:
    return TestClient(create_app(served_store.settings))


def test_every_store_and_online_nearest_first(
    client: TestClient, served_store: ServedStore
) -> None:
    stock = pd.read_parquet(served_store.data / "inventory.parquet")
    held = stock.groupby("item_id")["store_id"].nunique()
    item = str(held.idxmax())  # stocked in the most places
    body = client.get(f"/v1/items/{item}/availability", params={"near_store": "S001"},
                      headers=ADMIN).json()  # fmt: skip
    theirs = stock[stock["item_id"] == item].set_index("store_id")["quantity"]
    assert body["online"] == int(theirs.get("online", 0))
    assert {s["store_id"]: s["quantity"] for s in body["stores"]} == {
        sid: int(theirs.get(sid, 0)) for sid in ("S001", "S002", "S003", "S004")
    }
    # Lyon first, then Gent (about 600 km), Leeds (about 1,000 km), Porto (1,200 km).
    assert [s["store_id"] for s in body["stores"]] == ["S001", "S004", "S002", "S003"]
    km = [s["distance_km"] for s in body["stores"]]
    assert km[0] == 0 and 550 < km[1] < 650 and km == sorted(km)
    assert body["here"] == int(theirs.get("S001", 0))


def test_a_store_key_asks_near_its_own_store_and_bad_ids_are_named(
    client: TestClient,
) -> None:
    tablet = client.get("/v1/items/I000001/availability", headers={"X-API-Key": TABLET_KEY})
    assert tablet.status_code == 200 and tablet.json()["near_store_id"] == "S001"
    nothing = client.get("/v1/items/NO-SUCH/availability", headers=ADMIN)
    assert nothing.status_code == 404 and "NO-SUCH" in nothing.text
    nowhere = client.get("/v1/items/I000001/availability", params={"near_store": "S999"},
                         headers=ADMIN)  # fmt: skip
    assert nowhere.status_code == 404 and "near_store" in nowhere.text
    anywhere = client.get("/v1/items/I000001/availability", headers=ADMIN).json()
    assert anywhere["here"] is None and all(s["distance_km"] is None for s in anywhere["stores"])


class FakeShelf:
    """Stores without coordinates: the region decides what is near."""

    def __init__(self) -> None:
        self._places = {
            "A": Place("A", "Omni Annecy", "Annecy", "France", None, None),
            "B": Place("B", "Omni Bristol", "Bristol", "United Kingdom", None, None),
            "C": Place("C", "Omni Caen", "Caen", "France", None, None),
        }
        self._stock = {"A": {}, "B": {"I1": 2}, "C": {"I1": 4}, "online": {"I1": 12}}

    def items(self) -> dict[str, object]:
        return {"I1": type("Item", (), {"name": "Teapot"})()}

    def places(self) -> dict[str, Place]:
        return self._places

    def stock(self, store_id: str) -> dict[str, int]:
        return self._stock.get(store_id, {})


def test_without_coordinates_the_same_region_comes_first() -> None:
    found = availability(FakeShelf(), "I1", "A")  # type: ignore[arg-type]
    assert [s.store_id for s in found.stores] == ["A", "C", "B"]
    assert found.here == 0 and found.online == 12
    assert in_words(found) == "4 at Omni Caen, 2 at Omni Bristol, 12 online: order for pickup here"


def test_the_line_an_associate_reads_out() -> None:
    lyon = Place("S1", "Omni Lyon", "Lyon", "France", 45.764, 4.836)
    turin = Place("S2", "Omni Turin", "Turin", "Italy", 45.070, 7.687)
    km = distance_km(lyon, turin)
    assert km is not None and 235 < km < 237  # 223 km east, 77 km south
    found = Availability("I1", "Teapot", "S1", 0,
                         [Stocked("S1", "Omni Lyon", "Lyon", 0, 0.0),
                          Stocked("S2", "Omni Turin", "Turin", 3, round(km, 1))], 0)  # fmt: skip
    assert in_words(found) == "3 at Omni Turin (236 km)"
    assert in_words(Availability("I1", "Teapot", "S1", 0, [], 0)) == ""
