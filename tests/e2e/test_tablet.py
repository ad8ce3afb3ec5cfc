"""The store tablet page in a real Chromium (Playwright) against a real server.

Runs with Debian's `chromium` (make setup installs it when it can) or the browser named
by OMNI_CHROMIUM; skips, saying so, where there is none. With OMNI_SCREENSHOTS=docs the
main screens are saved under docs/ at the tablet's 1280x800 viewport.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx2
import pandas as pd
import pytest

from tests.conftest import ADMIN_KEY, TABLET_KEY, ServedStore
from tests.e2e.conftest import free_port

playwright = pytest.importorskip("playwright.sync_api")
VIEWPORT = {"width": 1280, "height": 800}
DOCS = Path(__file__).resolve().parents[2] / "docs"


def chromium() -> str:
    found = os.environ.get("OMNI_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.skip("no Chromium here: install Debian's chromium (make setup does when it can)")
    return found


@pytest.fixture
def page(server: str) -> Iterator[playwright.Page]:
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        context = browser.new_context(viewport=VIEWPORT, base_url=server, has_touch=True)
        yield context.new_page()
        context.close()
        browser.close()


def shoot(page: playwright.Page, name: str, tmp_path: Path) -> None:
    folder = DOCS if os.environ.get("OMNI_SCREENSHOTS") == "docs" else tmp_path
    page.screenshot(path=str(folder / f"tablet-{name}.png"))


@pytest.mark.slow
def test_a_store_associate_serves_a_customer(
    page: playwright.Page, served_store: ServedStore, server: str, tmp_path: Path
) -> None:
    expect = playwright.expect
    page.goto("/tablet")
    shoot(page, "sign-in", tmp_path)
    # A wrong key, then a key that is not bound to a store: refused, with the reason.
    page.get_by_label("Tablet key").fill("not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not known")
    page.get_by_label("Tablet key").fill(ADMIN_KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not bound to a store")

    page.get_by_label("Tablet key").fill(TABLET_KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Who is in front of you?")).to_be_visible()

    box = page.get_by_role("main").get_by_label("Loyalty card, customer id or e-mail")
    box.fill("nobody@example.com")
    box.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("Nobody matches 'nobody@example.com'")

    # Earlier today, on the app, they put an item this store has on their wish-list.
    stock = pd.read_parquet(served_store.data / "inventory.parquet")
    in_s001 = stock[(stock["store_id"] == "S001") & (stock["quantity"] > 0)]
    shelf = dict(zip(in_s001["item_id"], in_s001["quantity"], strict=True))
    wished = sorted(shelf)[-1]
    wish = {"event_id": "tablet-wish-1", "customer_id": "C0000070", "channel": "app",
            "type": "wishlist", "item_id": wished,
            "ts": (served_store.clock - pd.Timedelta(hours=2)).isoformat()}  # fmt: skip
    # Six days ago they phoned about a late delivery; nobody has resolved it yet.
    six_days_ago = (served_store.clock - pd.Timedelta(days=6)).isoformat()
    complaint = {"event_id": "tablet-complaint-1", "customer_id": "C0000070",
                 "channel": "call_center", "type": "complaint", "reason": "late delivery",
                 "status": "open", "case_id": "K-70", "ts": six_days_ago}  # fmt: skip
    sent = httpx2.post(f"{server}/v1/events", json={"events": [wish, complaint]},
                       headers={"X-API-Key": ADMIN_KEY})  # fmt: skip
    assert sent.status_code == 200, sent.text
    customers = pd.read_parquet(served_store.data / "customers.parquet")
    someone = customers[customers["customer_id"] == "C0000070"].iloc[0]
    box = page.get_by_role("main").get_by_label("Loyalty card, customer id or e-mail")
    box.fill(someone["email"].upper())
    box.press("Enter")
    expect(page.get_by_role("heading", name=someone["name"])).to_be_visible()
    recent = page.get_by_test_id("recent")
    expect(recent.locator("li").first).to_be_visible()
    expect(page.get_by_test_id("preferences")).to_contain_text("mostly ")
    expect(page.get_by_test_id("loyalty")).to_contain_text(" points")
    expect(page.get_by_test_id("service").locator("li").first).to_have_text(
        "Open complaint: late delivery, open for 6 days, by phone"
    )
    # While it is open no sales offer is made; resolved, the next look decides one.
    expect(page.get_by_test_id("offer-held")).to_be_visible()
    shoot(page, "complaint", tmp_path)
    resolved = {**complaint, "event_id": "tablet-complaint-2", "status": "resolved",
                "ts": (served_store.clock - pd.Timedelta(hours=1)).isoformat()}  # fmt: skip
    sent = httpx2.post(f"{server}/v1/events", json={"events": [resolved]},
                       headers={"X-API-Key": ADMIN_KEY})  # fmt: skip
    assert sent.status_code == 200, sent.text
    page.reload()
    expect(page.get_by_test_id("service").locator("li").first).to_contain_text(
        "complaint: late delivery, resolved today"
    )
    channels = page.get_by_label("Channels used")
    assert channels.locator(".chip").count() >= 1
    assert page.get_by_test_id("churn-band").inner_text() in {
        "low",
        "medium",
        "high",
        "lapsed",
        "new",
    }
    catalogue = pd.read_parquet(served_store.data / "catalogue.parquet").set_index("item_id")
    # The wish-list, latest first: the item wished on the app, on this shelf, to add.
    first_wish = page.get_by_test_id("wishlist").locator("li").first
    expect(first_wish).to_contain_text(str(catalogue.loc[wished, "name"]))
    expect(first_wish).to_contain_text(f"{shelf[wished]} on shelf")
    expect(first_wish.get_by_role("button", name=re.compile("^Add"))).to_be_visible()
    shoot(page, "customer", tmp_path)

    # Suggestions are on this store's shelves, with the quantity on hand.
    names = {name: item for item, name in catalogue["name"].items()}
    rows = page.get_by_test_id("suggestions").locator("li")
    assert rows.count() >= 1
    for i in range(rows.count()):
        name = rows.nth(i).locator(".what").inner_text().split("\n")[0].strip()
        on_shelf = rows.nth(i).locator(".qty").inner_text()
        assert names[name] in shelf and on_shelf == f"{shelf[names[name]]} on shelf"

    # Their personal offer: accepting it is a store event, and the next offer is a new
    # decision. Adding a suggestion to the cart is seen at once too.
    offer = page.get_by_test_id("next-best-offer")
    decided = offer.get_attribute("data-decision")
    offer_name = offer.locator(".what").inner_text().split("\n")[0].strip()
    assert decided and offer_name
    offer.get_by_role("button", name=re.compile("was accepted")).click()
    expect(page.get_by_role("status")).to_contain_text("accepted")
    latest = page.get_by_test_id("recent").locator("li").first
    expect(latest).to_contain_text(f"accepted offer {offer_name}")
    after = page.get_by_test_id("next-best-offer")
    assert after.count() == 0 or after.get_attribute("data-decision") != decided
    expect(page.get_by_test_id("recent").locator("li").first).to_contain_text("in this store")
    first = page.get_by_test_id("suggestions").locator("li").first
    item = first.locator(".what").inner_text().split("\n")[0].strip()
    first.get_by_role("button").click()
    expect(page.get_by_role("status")).to_contain_text("Added")
    expect(page.get_by_role("region", name="Open cart")).to_contain_text(item)

    # The item in the customer's hand: similar items on this store's shelves.
    page.get_by_label("Scan or type an item id").fill(names[item])
    page.get_by_role("button", name="Similar").click()
    similar = page.get_by_test_id("similar").locator("li")
    expect(similar.first).to_be_visible()
    shoot(page, "similar", tmp_path)
    # An item this store does not have: where it is instead, nearest store first.
    elsewhere = stock[(stock["store_id"] != "S001") & (stock["store_id"] != "online")
                      & (stock["quantity"] > 0) & ~stock["item_id"].isin(shelf)]  # fmt: skip
    missing = sorted(set(elsewhere["item_id"]))[0]
    page.get_by_label("Scan or type an item id").fill(missing)
    page.get_by_role("button", name="Similar").click()
    line = page.get_by_test_id("in-hand-stock")
    expect(line).to_contain_text(f"{catalogue.loc[missing, 'name']} is not on this shelf")
    theirs = elsewhere[elsewhere["item_id"] == missing]
    stores = pd.read_parquet(served_store.data / "stores.parquet").set_index("store_id")
    pairs = zip(theirs["store_id"], theirs["quantity"], strict=True)
    named = [f"{q} at {stores.loc[sid, 'name']}" for sid, q in pairs]
    assert any(n in line.inner_text() for n in named), (line.inner_text(), named)
    shoot(page, "elsewhere", tmp_path)

    # What was searched (e-mail addresses) went in form bodies: the access log, which
    # lists every request the tablet made, never holds them.
    log = (tmp_path / "server.log").read_text()
    assert "POST /tablet/find" in log
    for searched in ("nobody@example.com", someone["email"].upper()):
        for written in (searched, quote(searched), quote_plus(searched)):
            assert written not in log, written

    # The cookie holds a signed session, never the key, and scripts cannot read it.
    context = page.context
    cookie = next(c for c in context.cookies() if c["name"] == "omni_tablet_session")
    assert TABLET_KEY not in cookie["value"] and cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    # A page of another site on this host (another port: the same "site" to the cookie)
    # posts a form to the signed-in tablet: refused by its origin, nothing recorded.
    cart = page.get_by_role("region", name="Open cart").inner_text()
    evil = f"http://127.0.0.1:{free_port()}/win.html"
    target = f"{server}/tablet/customers/{someone['customer_id']}/cart"
    form = (
        f'<form method="post" action="{target}"><input name="item_id" value="{names[item]}">'
        '<input name="csrf" value="guessed"></form>'
        "<script>document.forms[0].submit()</script>"
    )
    page.route(evil, lambda route: route.fulfill(content_type="text/html", body=form))
    page.goto(evil)
    expect(page.get_by_role("alert")).to_contain_text("another site")
    page.goto(f"/tablet/customers/{someone['customer_id']}")
    assert page.get_by_role("region", name="Open cart").inner_text() == cart
    # Signed out, the same cookie is refused: the session was revoked, not just forgotten.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Tablet key")).to_be_visible()
    context.add_cookies([cookie])
    page.goto(f"/tablet/customers/{someone['customer_id']}")
    expect(page.get_by_label("Tablet key")).to_be_visible()
