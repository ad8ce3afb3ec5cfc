"""Tablet sessions as an attacker tries them: the cookie is a revocable signed session,
every form needs its CSRF token and this site's origin, and guessing keys is slowed."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from service.app import create_app
from service.settings import ApiKey, Settings
from service.storage.engine import open_engine
from service.storage.tables import offers as offers_table
from service.storage.tables import tablet_sessions
from service.tablet import sessions
from tests.conftest import ADMIN_KEY, TABLET_KEY, ServedStore

CUSTOMER = "C0000070"


@pytest.fixture
def app_for(served_store: ServedStore) -> Iterator[object]:
    made: list[TestClient] = []

    def make(**settings: object) -> TestClient:
        client = TestClient(create_app(served_store.settings.model_copy(update=settings)))
        made.append(client.__enter__())
        return client

    yield make
    for client in made:
        client.__exit__(None, None, None)


def csrf_of(client: TestClient, path: str = "/tablet") -> str:
    page = client.get(path)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text[:300]
    return found.group(1)


def signed_in(client: TestClient) -> str:
    done = client.post(
        "/tablet/sign-in", data={"key": TABLET_KEY, "csrf": csrf_of(client)}, follow_redirects=False
    )
    assert done.status_code == 303
    return csrf_of(client)


def add_to_cart(client: TestClient, csrf: str, **headers: str) -> int:
    form = {"item_id": "I000001", "csrf": csrf}
    url = f"/tablet/customers/{CUSTOMER}/cart"
    return client.post(url, data=form, headers=headers, follow_redirects=False).status_code


def test_the_cookie_is_a_session_that_sign_out_revokes(app_for: object) -> None:
    client = app_for()  # type: ignore[operator]
    csrf = signed_in(client)
    cookie = client.cookies.get("omni_tablet_session")
    assert cookie and TABLET_KEY not in cookie and "omni_tablet_key" not in client.cookies
    assert "Who is in front of you?" in client.get("/tablet").text
    assert add_to_cart(client, csrf) == 303
    assert client.post("/tablet/sign-out", data={"csrf": csrf}).status_code == 200
    # The same cookie again (a copy kept by whoever saw it): refused.
    client.cookies.set("omni_tablet_session", cookie, path="/tablet")
    assert "Tablet key" in client.get("/tablet").text
    assert add_to_cart(client, csrf) == 303  # back to sign-in, nothing recorded
    # A forged cookie is no session either.
    client.cookies.set("omni_tablet_session", cookie[:-4] + "AAAA", path="/tablet")
    assert "Tablet key" in client.get("/tablet").text


def test_a_session_expires(app_for: object) -> None:
    # Five seconds: long enough to sign in and look on a busy machine, short to wait out.
    client = app_for(tablet_session_hours=5 / 3600)  # type: ignore[operator]
    started = time.monotonic()
    signed_in(client)
    assert "Who is in front of you?" in client.get("/tablet").text
    time.sleep(max(0.0, started + 5.2 - time.monotonic()))
    assert "Tablet key" in client.get("/tablet").text


def test_every_form_needs_its_token_and_this_sites_origin(app_for: object) -> None:
    client = app_for()  # type: ignore[operator]
    refused = client.post("/tablet/sign-in", data={"key": TABLET_KEY})
    assert refused.status_code == 403 and "out of date" in refused.text
    csrf = signed_in(client)
    assert add_to_cart(client, "") == 403
    assert add_to_cart(client, "guessed") == 403
    other = app_for()  # type: ignore[operator]
    assert add_to_cart(client, signed_in(other)) == 403  # another session's token
    evil = add_to_cart(client, csrf, origin="http://testserver:8001")
    assert evil == 403
    assert add_to_cart(client, csrf, referer="http://evil.example/page") == 403
    assert add_to_cart(client, csrf, origin="http://testserver") == 303


def test_guessing_keys_is_slowed_per_client(app_for: object) -> None:
    client = app_for(auth_failures_per_minute=3)  # type: ignore[operator]
    for guess in ("a", "b", "c"):
        failed = client.post("/tablet/sign-in", data={"key": guess, "csrf": csrf_of(client)})
        assert failed.status_code == 401
    slowed = client.post("/tablet/sign-in", data={"key": TABLET_KEY, "csrf": csrf_of(client)})
    assert slowed.status_code == 429 and int(slowed.headers["Retry-After"]) >= 1
    assert "Too many failed sign-ins" in slowed.text
    # The API counts the same failures: even the right key now waits its turn.
    url = f"/v1/customers/{CUSTOMER}/recommendations"
    assert client.get(url, headers={"X-API-Key": ADMIN_KEY}).status_code == 429
    fresh = app_for(auth_failures_per_minute=3)  # type: ignore[operator]
    for _ in range(3):
        assert fresh.get(url, headers={"X-API-Key": "wrong"}).status_code == 401
    assert fresh.get(url, headers={"X-API-Key": ADMIN_KEY}).status_code == 429


def test_a_tablet_key_answers_only_offers_made_to_the_customer(app_for: object) -> None:
    client = app_for()  # type: ignore[operator]
    engine = open_engine(client.app.state.settings.database_url)  # type: ignore[attr-defined]
    with engine.connect() as conn:
        offer_ids = [r[0] for r in conn.execute(offers_table.select()).all()]
    engine.dispose()
    event = {"event_id": "never-offered", "ts": "2026-01-01T00:00:00Z", "channel": "store",
             "store_id": "S001", "customer_id": "C0000071", "type": "offer_accepted",
             "offer_id": offer_ids[0]}  # fmt: skip
    refused = client.post("/v1/events", json={"events": [event]}, headers={"X-API-Key": TABLET_KEY})
    assert refused.status_code == 403
    assert refused.json()["rejected"][0]["error"] == "this offer was never made to this customer"


def test_a_session_is_held_and_revoked_in_the_store(engine: Engine) -> None:
    settings = Settings(
        api_keys={"k-tab": ApiKey(name="tab", scopes=sorted(sessions.NEEDS), store_id="S1")}
    )
    now = datetime.now(UTC)
    with engine.begin() as conn:
        token = sessions.open_session(conn, settings, "tab", now)
    with engine.connect() as conn:
        live = sessions.read_session(conn, settings, token, now)
        assert live is not None and live.caller.store_id == "S1"
        stored = conn.execute(select(tablet_sessions)).all()
    assert len(stored) == 1 and live.session_id not in str(stored[0])  # only its hash
    with engine.begin() as conn:
        sessions.revoke(conn, live.session_id, now)
    with engine.connect() as conn:
        assert sessions.read_session(conn, settings, token, now) is None
        later = now + timedelta(hours=settings.tablet_session_hours + 1)
        assert sessions.read_session(conn, settings, token, later) is None
    rotated = settings.model_copy(update={"api_keys": {}})  # the key left the settings
    with engine.connect() as conn:
        assert sessions.read_session(conn, rotated, token, now) is None
