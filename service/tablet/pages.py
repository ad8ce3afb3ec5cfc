"""/tablet: sign in with a store-bound key, find the customer, see them across channels,
suggest what is on this store's shelves, and record what happened as store events.

Plain HTML forms (no build step, no CDN, every asset served from here); each action is a
POST that records an event and redirects back (so a reload never repeats it).
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import Connection, func, or_, select

from features import columns as c
from features.validation import BatchRejected
from service.auth import Caller
from service.availability import Availability, availability, in_words
from service.decisioning.nbo import HeldOut, OfferAsk, Offered, next_best_offer, where_for
from service.deps import ConnDep, CustomerIdPath, NowDep, ServedDep, SettingsDep, ShelfDep
from service.experiments import plots
from service.experiments.report import build, period_problem
from service.experiments.summary import tables
from service.intake import accept_events
from service.limits import client_of
from service.people import Person, find_person
from service.profiles import build_profile
from service.recommending import Ask, Suggestion, recommend, similar
from service.serving import ModelUnavailable, Served
from service.settings import Settings
from service.shelf import Shelf
from service.storage import cases
from service.storage.tables import customers, stores
from service.store_keys import store_key_problems
from service.tablet import sessions, words

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/tablet", include_in_schema=False)


class TabletRefused(Exception):
    """A tablet request refused with a page saying why (rendered by `refused_page`)."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers or {}


def refused_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TabletRefused)
    response = _page(request, "signin.html", None, None, error=exc.message)
    response.status_code = exc.status_code
    response.headers.update(exc.headers)
    return response


def tablet(request: Request) -> Caller | None:
    """The tablet signed in on this browser: its session cookie's live session, if any."""
    token = request.cookies.get(sessions.COOKIE)
    session = None
    if token:
        with request.app.state.engine.connect() as conn:
            session = sessions.read_session(
                conn, request.app.state.settings, token, datetime.now(UTC)
            )
    request.state.session = session
    return session.caller if session else None


TabletDep = Annotated[Caller | None, Depends(tablet)]

#: What a refused form says.
STALE_FORM = "This form is out of date or was not sent from this tablet's page. Reload and retry."


def posted(request: Request, who: TabletDep, csrf: Annotated[str, Form()] = "") -> Caller | None:
    """A form post of a signed-in page: from this site's own origin, with the session's
    CSRF token; refused (403) otherwise. The signed-in tablet, or None."""
    settings = request.app.state.settings
    if not sessions.same_origin(request):
        raise TabletRefused(403, "Refused: the form was sent from another site.")
    if who is not None and not sessions.csrf_ok(settings, request.state.session, csrf):
        raise TabletRefused(403, STALE_FORM)
    return who


PostedDep = Annotated[Caller | None, Depends(posted)]


def _page(
    request: Request, name: str, who: Caller | None, conn: Connection | None, **context: Any
) -> HTMLResponse:
    now = context.pop("now", datetime.now(UTC))
    here = who.store_id if who else None
    store = None
    if who is not None and conn is not None:
        name_of = conn.execute(
            select(stores.c[c.NAME]).where(stores.c[c.STORE_ID] == who.store_id)
        ).scalar()
        store = {"store_id": who.store_id, "name": name_of or who.store_id}
    return templates.TemplateResponse(
        request,
        name,
        {
            "store": store,
            "where": lambda channel, store_id: words.where(channel, store_id, here),
            "when": lambda moment: words.when(moment, now),
            "verb": words.verb,
            "channel_label": lambda ch: words.CHANNEL_LABELS.get(ch, ch),
            "csrf": sessions.csrf_token(
                request.app.state.settings, getattr(request.state, "session", None)
            ),
            "error": request.query_params.get("error"),
            "done": request.query_params.get("done"),
            **context,
        },
        status_code=context.get("status_code", 200),
    )


def _to_sign_in() -> RedirectResponse:
    return RedirectResponse("/tablet", status_code=303)


@router.get("", response_class=HTMLResponse)
def home(request: Request, who: TabletDep, conn: ConnDep) -> HTMLResponse:
    if who is None:
        return _page(request, "signin.html", None, None)
    return _page(request, "search.html", who, conn, can_report="admin" in who.scopes)


@router.get("/report", response_class=HTMLResponse, response_model=None)
def report_page(
    request: Request,
    who: TabletDep,
    conn: ConnDep,
    settings: SettingsDep,
    since: str = "",
    until: str = "",
    experiment: str = "",
) -> HTMLResponse | RedirectResponse:
    """The report for a tablet signed in with a key that may read it (scope admin): the
    tables and the plots of a period (default: the last 7 days)."""
    if who is None:
        return _to_sign_in()
    if "admin" not in who.scopes:
        raise TabletRefused(403, "This tablet's key may not read reports (it needs admin).")
    try:
        end = _day(until) + timedelta(days=1) if until else settings.now()
        start = _day(since) if since else end - timedelta(days=7)
    except ValueError:
        raise TabletRefused(400, "Dates are read as YYYY-MM-DD.") from None
    wrong = period_problem(start, end)
    if wrong is not None:
        raise TabletRefused(400, f"The period's {wrong[0]} {wrong[1]}.")
    named = [e.name for e in settings.experiments]
    chosen = experiment if experiment in named else None
    made = build(request.app.state.engine, settings, start, end, chosen)
    images = [
        (name, "data:image/png;base64," + base64.b64encode(plots.draw(made, name)).decode())
        for name in plots.PLOTS
    ]
    what = f"Experiment {chosen}" if chosen else "Offers and messages against the holdout"
    return _page(
        request,
        "report.html",
        who,
        conn,
        heading=what,
        period=f"{start:%d %b %Y} to {end:%d %b %Y} (UTC); purchases within "
        f"{settings.attribution_days:g} days of each customer's first contact",
        since=f"{start:%Y-%m-%d}",
        until=f"{end - timedelta(days=1):%Y-%m-%d}",
        experiment=chosen,
        experiments=named,
        tables=tables(made),
        images=images,
    )


def _day(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)


@router.post("/sign-in", response_class=HTMLResponse, response_model=None)
def sign_in(
    request: Request, key: Annotated[str, Form()], csrf: Annotated[str, Form()] = ""
) -> Response:
    """Open a session for a tablet key (the cookie carries the session, never the key).
    Failed sign-ins are limited per client address, as unknown API keys are."""
    settings = request.app.state.settings
    if not sessions.same_origin(request):
        raise TabletRefused(403, "Refused: the form was sent from another site.")
    if not sessions.csrf_ok(settings, None, csrf):
        raise TabletRefused(403, STALE_FORM)
    failures, client = request.app.state.failures, client_of(request)
    wait = failures.retry_after(client)
    if wait is not None:
        message = f"Too many failed sign-ins from this tablet: try again in {wait} s."
        raise TabletRefused(429, message, {"Retry-After": str(wait)})
    spec = settings.api_keys.get(key.strip())
    error = None
    if spec is None:
        error = "That key is not known. Check it with your manager."
    elif spec.store_id is None:
        error = "That key is not a tablet key: it is not bound to a store."
    elif not set(spec.scopes) >= sessions.NEEDS:
        error = "That key may not look up customers and record store events."
    if error or spec is None:
        failures.failed(client)
        return _page(request, "signin.html", None, None, error=error, status_code=401)
    with request.app.state.engine.begin() as conn:
        token = sessions.open_session(conn, settings, spec.name, datetime.now(UTC))
    response = RedirectResponse("/tablet", status_code=303)
    secure = settings.cookie_secure
    response.set_cookie(
        sessions.COOKIE,
        token,
        max_age=int(settings.tablet_session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" if secure is None else secure,
        path="/tablet",
    )
    return response


@router.post("/sign-out")
def sign_out(request: Request, who: PostedDep) -> RedirectResponse:
    """End the session everywhere (the token is refused from now on, on every worker)."""
    session = request.state.session
    if session is not None:
        with request.app.state.engine.begin() as conn:
            sessions.revoke(conn, session.session_id, datetime.now(UTC))
    response = _to_sign_in()
    response.delete_cookie(sessions.COOKIE, path="/tablet")
    return response


@router.post("/find", response_class=HTMLResponse, response_model=None)
def find(
    request: Request, who: PostedDep, conn: ConnDep, q: Annotated[str, Form(max_length=256)] = ""
) -> Response:
    """Who matches a card number, customer id or e-mail. A form post: what was searched
    (an e-mail address) is in the body, never in the URL the access log writes."""
    if who is None:
        return _to_sign_in()
    query = q.strip()
    customer_id = _lookup(conn, query) if query else None
    if customer_id is None:
        message = f"Nobody matches '{query}'. Check the card number or the e-mail address."
        return _page(request, "search.html", who, conn, query=query, error=message, status_code=404)
    return RedirectResponse(f"/tablet/customers/{quote(customer_id)}", status_code=303)


@router.get("/customers/{customer_id}", response_class=HTMLResponse, response_model=None)
def customer(
    request: Request,
    customer_id: CustomerIdPath,
    who: TabletDep,
    served: ServedDep,
    shelf: ShelfDep,
    conn: ConnDep,
    now: NowDep,
    settings: SettingsDep,
    item: str = "",
) -> Response:
    if who is None:
        return _to_sign_in()
    person = find_person(conn, customer_id=customer_id)
    if person is None:
        message = f"Nobody has the id '{customer_id}'."
        return _page(request, "search.html", who, conn, error=message, status_code=404)
    profile = build_profile(conn, served, shelf, customer_id, person, now, settings, who.store_id)
    suggestions, note = [], ""
    try:
        answer = recommend(served, shelf, conn, person, Ask(k=6, store_id=who.store_id), now)
        suggestions = [s for s in answer.items if s.in_stock]
        note = "Nothing to suggest from this store's shelves." if not suggestions else ""
    except ModelUnavailable:
        note = "Suggestions are not available yet (no model loaded)."
    similar, similar_note = _similar(served, shelf, who, item.strip())
    in_hand = _where_is(shelf, who, item.strip())
    return _page(
        request,
        "customer.html",
        who,
        conn,
        now=now,
        profile=profile,
        suggestions=suggestions,
        suggestions_note=note,
        item_in_hand=item.strip(),
        similar=similar,
        similar_note=similar_note,
        in_hand=in_hand,
        in_hand_elsewhere=in_words(in_hand) if in_hand else "",
        offer=_offer(request, served, shelf, settings, person, customer_id, who, now),
        held_for_complaint=settings.hold_offers_during_complaint
        and any(cases.open_complaint(x.type, x.status) for x in profile.service),
    )


@router.post("/customers/{customer_id}/cart")
def add_to_cart(
    request: Request,
    customer_id: CustomerIdPath,
    item_id: Annotated[str, Form()],
    who: PostedDep,
    now: NowDep,
) -> RedirectResponse:
    if who is None:
        return _to_sign_in()
    done = f"Added {item_id} to the cart."
    return _record(request, who, customer_id, now, done, type=c.EventType.ADD_TO_CART.value,
                   item_id=item_id, quantity=1)  # fmt: skip


@router.post("/customers/{customer_id}/offers/{offer_id}/{outcome}")
def offer_outcome(
    request: Request,
    customer_id: CustomerIdPath,
    offer_id: str,
    outcome: str,
    who: PostedDep,
    now: NowDep,
) -> RedirectResponse:
    if who is None:
        return _to_sign_in()
    kinds = {
        "shown": c.EventType.OFFER_SHOWN,
        "accepted": c.EventType.OFFER_ACCEPTED,
        "declined": c.EventType.OFFER_DECLINED,
    }
    if outcome not in kinds:
        return RedirectResponse(f"/tablet/customers/{quote(customer_id)}?error=Unknown+action", 303)
    done = f"Recorded: offer {offer_id} {outcome}."
    return _record(
        request, who, customer_id, now, done, type=kinds[outcome].value, offer_id=offer_id
    )


def _record(
    request: Request, who: Caller, customer_id: str, now: datetime, done: str, **fields: object
) -> RedirectResponse:
    """One store event for this customer at this tablet's store, then back to the customer."""
    event = {
        "event_id": f"tablet-{uuid.uuid4().hex}",
        "ts": now.isoformat(),
        "customer_id": customer_id,
        "channel": c.Channel.STORE.value,
        "store_id": who.store_id,
        **fields,
    }
    back = f"/tablet/customers/{quote(customer_id)}"
    with request.app.state.engine.connect() as conn:
        problems = store_key_problems(conn, request.app.state.shelf, str(who.store_id), [event])
    if problems:
        reason = "; ".join(f"{field}: {why}" for _, _, field, why in problems)
        return RedirectResponse(f"{back}?error={quote('Not recorded: ' + reason)}", 303)
    try:
        accept_events(request.app.state.engine, [event])
    except BatchRejected as rejected:
        reason = "; ".join(f"{e.field}: {e.message}" for e in rejected.errors)
        return RedirectResponse(f"{back}?error={quote('Not recorded: ' + reason)}", 303)
    return RedirectResponse(f"{back}?done={quote(done)}", status_code=303)


def _lookup(conn: Connection, query: str) -> str | None:
    """A customer id from a customer id, a loyalty card (also a customer id) or an e-mail."""
    person = find_person(conn, customer_id=query)
    if person is not None:
        return query
    return conn.execute(
        select(customers.c[c.CUSTOMER_ID]).where(
            or_(customers.c[c.EMAIL] == query, func.lower(customers.c[c.EMAIL]) == query.lower())
        )
    ).scalar()


def _similar(
    served: Served, shelf: Shelf, who: Caller, item_id: str
) -> tuple[list[Suggestion], str]:
    if not item_id:
        return [], ""
    try:
        found = similar(served, shelf, item_id, 6, who.store_id)
    except ModelUnavailable:
        return [], "Similar items are not available yet (no model loaded)."
    if found is None:
        return [], f"No item has the id '{item_id}'."
    return found, "" if found else "Nothing similar on this store's shelves."


def _where_is(shelf: Shelf, who: Caller, item_id: str) -> Availability | None:
    """The item in hand's stock here and elsewhere (None: no item, or not in the
    catalogue)."""
    if not item_id or item_id not in shelf.items():
        return None
    near = who.store_id if who.store_id in shelf.places() else None
    return availability(shelf, item_id, near)


def _offer(
    request: Request,
    served: Served,
    shelf: Shelf,
    settings: Settings,
    person: Person,
    customer_id: str,
    who: Caller,
    now: datetime,
) -> Offered | None:
    """The customer's next-best offer here: the same decision every channel gets."""
    where = where_for(shelf, c.Channel.STORE.value, who.store_id)
    ask = OfferAsk(person, customer_id, where, who.store_id, now)
    try:
        return next_best_offer(request.app.state.engine, served, shelf, settings, ask)
    except HeldOut:  # a control group: the page offers nothing, as every channel does
        return None
