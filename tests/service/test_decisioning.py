"""Next-best offers, abandoned-cart triggers and the contact policy, told as a marketer
would tell them, each against a real store (a copy of the served one) and registry."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.decisioning.triggers import due
from service.storage.codec import micros
from service.storage.engine import open_engine
from tests.conftest import ADMIN_KEY, TABLET_KEY, ServedStore, add_customer, copy_of

ADMIN = {"X-API-Key": ADMIN_KEY}
TABLET = {"X-API-Key": TABLET_KEY}


@pytest.fixture(scope="module")
def store(served_store: ServedStore, tmp_path_factory: pytest.TempPathFactory) -> ServedStore:
    """A copy of the served store (its own ledgers), its clock at noon."""
    noon = served_store.clock + timedelta(hours=12)
    return copy_of(served_store, tmp_path_factory.mktemp("decisioning"), clock=noon)


@pytest.fixture(scope="module")
def client(store: ServedStore) -> Iterator[TestClient]:
    with TestClient(create_app(store.settings)) as test_client:
        yield test_client


def customer(store: ServedStore, cid: str, *, email: bool = True, push: bool = True) -> str:
    return add_customer(store.settings, cid, email=email, push=push)


def post(client: TestClient, *events: dict[str, Any]) -> None:
    answer = client.post("/v1/events", json={"events": list(events)}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    assert not answer.json()["rejected"]


def ev(name: str, cid: str, kind: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {"event_id": name, "ts": at.isoformat(), "customer_id": cid, "type": kind,
            "channel": "web", **fields}  # fmt: skip


def cart(client: TestClient, store: ServedStore, cid: str, hours_ago: float, *items: str) -> None:
    at = store.clock - timedelta(hours=hours_ago)
    post(client, *[ev(f"{cid}-add-{i}", cid, "add_to_cart", at, item_id=i) for i in items])


def pull(client: TestClient, channel: str, **params: Any) -> dict[str, Any]:
    answer = client.get(
        "/v1/triggers/abandoned-carts", params={"channel": channel, "limit": 1000, **params},
        headers=ADMIN,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def pulled(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["customer_id"]: t for t in body["triggers"]}


def offer(client: TestClient, cid: str, channel: str, headers: dict[str, str]) -> dict[str, Any]:
    params = {"channel": channel}
    answer = client.get(f"/v1/customers/{cid}/next-best-offer", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


# -- abandoned carts ----------------------------------------------------------------------
def test_web_cart_bought_in_store_ten_minutes_later_gets_no_email(
    client: TestClient, store: ServedStore
) -> None:
    bought, left = customer(store, "SCN-BUY"), customer(store, "SCN-LEFT")
    cart(client, store, bought, 30, "I000010", "I000011")
    cart(client, store, left, 30, "I000010", "I000011")
    till = store.clock - timedelta(hours=30) + timedelta(minutes=10)
    post(client, *[ev(f"{bought}-till-{i}", bought, "purchase", till, channel="store",
                      store_id="S002", item_id=i, quantity=1, price=3.0)
                   for i in ("I000010", "I000011")])  # fmt: skip
    got = pulled(pull(client, "email"))
    assert bought not in got
    assert {i["item_id"] for i in got[left]["items"]} == {"I000010", "I000011"}


def test_late_store_purchase_timestamped_before_the_window_stops_the_email(
    client: TestClient, store: ServedStore
) -> None:
    cid = customer(store, "SCN-LATE")
    cart(client, store, cid, 30, "I000020")
    engine = open_engine(store.settings.database_url)
    before = due(engine, store.settings, "email", store.clock)
    assert cid in set(before["customer_id"])  # abandoned: the window passed 6 hours ago
    # The till's purchase reaches Omni now, stamped ten minutes after the cart.
    till = store.clock - timedelta(hours=30) + timedelta(minutes=10)
    post(client, ev(f"{cid}-till", cid, "purchase", till, channel="store", store_id="S001",
                    item_id="I000020", quantity=1, price=2.0))  # fmt: skip
    assert cid not in set(due(engine, store.settings, "email", store.clock)["customer_id"])
    engine.dispose()
    assert cid not in pulled(pull(client, "email"))


def test_no_email_consent_means_no_email_trigger_but_a_push(
    client: TestClient, store: ServedStore
) -> None:
    cid = customer(store, "SCN-NOMAIL", email=False, push=True)
    cart(client, store, cid, 30, "I000030")
    assert cid not in pulled(pull(client, "email"))
    pushed = pulled(pull(client, "push"))
    assert pushed[cid]["channel"] == "push"


def test_a_trigger_is_handed_out_once(client: TestClient, store: ServedStore) -> None:
    cid = customer(store, "SCN-ONCE")
    cart(client, store, cid, 30, "I000040")
    first = pulled(pull(client, "email"))
    assert cid in first
    assert cid not in pulled(pull(client, "email"))


def test_already_messaged_today_is_not_in_the_pull(client: TestClient, store: ServedStore) -> None:
    cid = customer(store, "SCN-CAP")
    cart(client, store, cid, 30, "I000050")
    assert cid in pulled(pull(client, "push"))  # pushed at noon: today's one message
    assert cid not in pulled(pull(client, "email"))
    # The cap counts across channels, so the e-mail stays due for tomorrow.
    engine = open_engine(store.settings.database_url)
    assert cid in set(due(engine, store.settings, "email", store.clock)["customer_id"])
    engine.dispose()


def test_removed_items_and_short_windows(client: TestClient, store: ServedStore) -> None:
    emptied = customer(store, "SCN-REMOVED")
    cart(client, store, emptied, 30, "I000060")
    gone = store.clock - timedelta(hours=29)
    post(client, ev(f"{emptied}-rm", emptied, "remove_from_cart", gone, item_id="I000060"))
    recent = customer(store, "SCN-RECENT")
    cart(client, store, recent, 2, "I000061")  # 2 hours: due for a push, not yet an e-mail
    email = pulled(pull(client, "email"))
    assert emptied not in email and recent not in email
    push = pulled(pull(client, "push"))
    assert emptied not in push and recent in push


def test_failed_delivery_is_handed_out_again_and_acks_are_checked(
    client: TestClient, store: ServedStore
) -> None:
    cid = customer(store, "SCN-ACK")
    cart(client, store, cid, 30, "I000070")
    trigger = pulled(pull(client, "email"))[cid]["trigger_id"]
    url = f"/v1/triggers/{trigger}/ack"
    failed = client.post(url, json={"outcome": "failed"}, headers=ADMIN)
    assert failed.status_code == 200 and failed.json()["status"] == "failed"
    again = pulled(pull(client, "email"))  # the contact was given back: not over the cap
    assert again[cid]["trigger_id"] == trigger
    assert client.post(url, json={"outcome": "sent"}, headers=ADMIN).json()["status"] == "sent"
    assert client.post(url, json={"outcome": "sent"}, headers=ADMIN).status_code == 200
    assert client.post(url, json={"outcome": "failed"}, headers=ADMIN).status_code == 409
    assert client.post("/v1/triggers/nope/ack", headers=ADMIN).status_code == 404
    assert client.post(url, json={"outcome": "maybe"}, headers=ADMIN).status_code == 422


def test_pages_follow_the_cursor_and_bad_asks_are_named(
    client: TestClient, store: ServedStore
) -> None:
    ids = [customer(store, f"SCN-PAGE-{n}") for n in range(3)]
    for n, cid in enumerate(ids):
        cart(client, store, cid, 40 + n, f"I00008{n}")
    seen: list[str] = []
    body = pull(client, "email", limit=1)
    while body["triggers"]:
        seen += [t["customer_id"] for t in body["triggers"]]
        if body["next_cursor"] is None:
            break
        body = pull(client, "email", limit=1, cursor=body["next_cursor"])
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))
    bad = client.get("/v1/triggers/abandoned-carts", params={"channel": "email", "cursor": "x"},
                     headers=ADMIN)  # fmt: skip
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "cursor"]
    web = client.get("/v1/triggers/abandoned-carts", params={"channel": "web"}, headers=ADMIN)
    assert web.status_code == 422 and web.json()["detail"][0]["loc"] == ["query", "channel"]
    tablet = client.get("/v1/triggers/abandoned-carts", params={"channel": "email"},
                        headers=TABLET)  # fmt: skip
    assert tablet.status_code == 403


def test_nothing_goes_out_in_quiet_hours(client: TestClient, store: ServedStore) -> None:
    cid = customer(store, "SCN-QUIET")
    cart(client, store, cid, 3, "I000090")
    night = store.settings.model_copy(update={"clock": store.clock + timedelta(hours=10)})
    client.app.state.settings = night  # type: ignore[attr-defined]
    try:
        body = pull(client, "push")
        assert body["triggers"] == [] and body["quiet_until"]
    finally:
        client.app.state.settings = store.settings  # type: ignore[attr-defined]
    assert cid in pulled(pull(client, "push"))


# -- next-best offer ----------------------------------------------------------------------
def test_tablet_and_email_get_the_same_offer_and_decision(
    client: TestClient, store: ServedStore
) -> None:
    cid = "C0000100"
    customer(store, cid)  # consents to e-mail
    tablet = offer(client, cid, "store", TABLET)
    assert tablet["offer"] is not None and tablet["decision_id"] and tablet["reason"]
    assert tablet["reused"] is False and tablet["decided_in"] == "store S001"
    email = offer(client, cid, "email", ADMIN)
    assert email["decision_id"] == tablet["decision_id"]
    assert email["offer"] == tablet["offer"] and email["reused"] is True
    assert email["valid_until"] == tablet["valid_until"]


def test_accepted_offer_makes_the_next_ask_get_a_new_one(
    client: TestClient, store: ServedStore
) -> None:
    cid = "C0000101"
    customer(store, cid)
    first = offer(client, cid, "email", ADMIN)
    took = store.clock
    post(client, ev(f"{cid}-took", cid, "offer_accepted", took, channel="store",
                    store_id="S001", offer_id=first["offer"]["offer_id"]))  # fmt: skip
    second = offer(client, cid, "email", ADMIN)
    assert second["decision_id"] != first["decision_id"]
    assert second["offer"] is None or second["offer"]["offer_id"] != first["offer"]["offer_id"]
    declined = ev(f"{cid}-no", cid, "offer_declined", took, channel="app",
                  offer_id=second["offer"]["offer_id"])  # fmt: skip
    post(client, declined)
    third = offer(client, cid, "email", ADMIN)
    assert third["decision_id"] not in (first["decision_id"], second["decision_id"])


def test_no_consent_no_email_offer_and_unknowns_are_named(
    client: TestClient, store: ServedStore
) -> None:
    cid = customer(store, "C0000102", email=False)
    refused = offer(client, cid, "email", ADMIN)
    assert refused["offer"] is None and "consent" in refused["reason"]
    assert offer(client, cid, "web", ADMIN)["offer"] is not None
    url = f"/v1/customers/{cid}/next-best-offer"
    bad = client.get(url, params={"channel": "fax"}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "channel"]
    assert client.get(url, params={"channel": "store"}, headers=ADMIN).status_code == 422
    missing = client.get("/v1/customers/NOBODY/next-best-offer", params={"channel": "web"},
                         headers=ADMIN)  # fmt: skip
    assert missing.status_code == 404


def test_nothing_to_offer_stands_until_an_event_of_theirs_arrives(store: ServedStore) -> None:
    """Customers who answered every offer have none open; a new offer reaches them at
    their next event, or once `no_offer_seconds` have passed, and any process sees it."""
    ids = [customer(store, "SCN-NOTHING"), customer(store, "SCN-NOTHING-2")]
    engine = open_engine(store.settings.database_url)
    with engine.connect() as conn:
        book = [str(o) for o in conn.exec_driver_sql("SELECT offer_id FROM offers").scalars()]
    with TestClient(create_app(store.settings)) as first:
        for cid in ids:
            post(first, *[ev(f"{cid}-no-{o}", cid, "offer_declined", store.clock, offer_id=o)
                          for o in book])  # fmt: skip
            nothing = offer(first, cid, "web", ADMIN)
            assert nothing["offer"] is None and nothing["decision_id"] is None
    year = timedelta(days=365)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO offers (offer_id, name, kind, channels, valid_from, valid_until, value)"
            " VALUES ('O-NEW', 'Free gift wrap', 'service', '', ?, ?, 4.0)",
            (micros(store.clock - year), micros(store.clock + year)),
        )
    engine.dispose()
    # Another process, the new offer on its shelf, reads the same "nothing" for now.
    with TestClient(create_app(store.settings)) as second:
        again = offer(second, ids[0], "web", ADMIN)
        assert again["offer"] is None and again["reason"] == nothing["reason"]
        post(second, ev(f"{ids[0]}-view", ids[0], "view", store.clock, item_id="I000001"))
        after = offer(second, ids[0], "web", ADMIN)
        assert after["offer"]["offer_id"] == "O-NEW" and after["reused"] is False
        second.app.state.settings = store.settings.model_copy(  # type: ignore[attr-defined]
            update={"no_offer_seconds": 0}
        )
        assert offer(second, ids[1], "web", ADMIN)["offer"]["offer_id"] == "O-NEW"


# -- at the same time ---------------------------------------------------------------------
def test_channels_asking_at_once_share_one_decision(client: TestClient, store: ServedStore) -> None:
    cid = customer(store, "C0000103")

    def ask(channel: str) -> str:
        headers = TABLET if channel == "store" else ADMIN
        return str(offer(client, cid, channel, headers)["decision_id"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = list(pool.map(ask, ["web", "app", "email", "store", "web", "email"]))
    assert len(set(ids)) == 1 and ids[0] != "None"


def test_pulls_at_once_hand_each_trigger_out_once_within_the_caps(
    client: TestClient, store: ServedStore
) -> None:
    ids = [customer(store, f"SCN-RACE-{n}") for n in range(6)]
    for n, cid in enumerate(ids):
        cart(client, store, cid, 30, f"I00011{n}")
    with ThreadPoolExecutor(max_workers=4) as pool:
        pages = list(
            pool.map(lambda ch: (ch, pull(client, ch)), ["email", "push", "email", "push"])
        )
    got = [(ch, t["customer_id"]) for ch, body in pages for t in body["triggers"]]
    mine = [who for _, who in got if who in ids]
    # Each customer got exactly one message in all (a cap of one a day, any channel).
    assert sorted(mine) == sorted(ids)


def test_erasure_removes_what_was_decided_and_sent(client: TestClient, store: ServedStore) -> None:
    cid = customer(store, "SCN-ERASE")
    cart(client, store, cid, 30, "I000120")
    assert cid in pulled(pull(client, "email"))
    assert offer(client, cid, "web", ADMIN)["decision_id"]
    held = client.get(f"/v1/customers/{cid}/export", headers=ADMIN).json()
    assert {x["kind"] for x in held["exposures"]} == {"trigger", "offer"}  # what was shown
    assert client.delete(f"/v1/customers/{cid}", headers=ADMIN).status_code == 200
    engine = open_engine(store.settings.database_url)
    with engine.connect() as conn:
        for table in ("decisions", "contacts", "triggers", "exposures"):
            left = conn.exec_driver_sql(
                f"SELECT count(*) FROM {table} WHERE person_id = ?", (cid,)
            ).scalar()
            assert left == 0, table
    engine.dispose()
