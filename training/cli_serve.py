"""`omni serve`: the scoring API under uvicorn (the service itself lives in service/)."""

from __future__ import annotations

import json
import os
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from service.settings import SCOPES, ApiKey, Settings
from training.cli_answers import refresh_answers
from training.cli_common import DatabaseOption, console, settings_for
from training.cli_common import store as store_of

#: What a store tablet may do: everything but administration.
TABLET_SCOPES = ["events:write", "recommend", "churn:read", "profile:read"]


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo_keys: Annotated[
        bool,
        typer.Option(help="Add two fresh keys for this run (admin; a tablet bound to --store)."),
    ] = False,
    store: Annotated[str | None, typer.Option(help="Store the demo tablet key serves.")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Server processes (each loads the models once).")
    ] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request (ids only).")] = True,
    replay: Annotated[
        bool,
        typer.Option(
            help="Serve as if it were noon the day after the last stored event "
            "(a historical or synthetic store as if live; sets the clock)."
        ),
    ] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Serve the API: loads the registry's champion models, answers until stopped."""
    import uvicorn

    from service.app import create_app
    from service.lifecycle import SUPERVISOR_ENV

    settings = replayed(settings_for(database_url), replay)
    if replay:
        console.print(f"[bold]replaying[/bold]: the service's clock reads {settings.clock}")
    if demo_keys:
        customer, item, first_store = _examples(settings)
        settings = _with_demo_keys(settings, store or first_store, host, port, customer, item)
    _ensure_state(settings)  # once, before the workers start
    refresh_answers(settings, only_if_stale=True)
    if workers == 1:
        uvicorn.run(
            create_app(settings), host=host, port=port, log_level="info", access_log=access_log
        )
        return
    # Worker processes build their own app from the environment: hand the settings over.
    os.environ["OMNI_DATABASE_URL"] = settings.database_url
    if settings.clock is not None:
        os.environ["OMNI_CLOCK"] = settings.clock.isoformat()
    os.environ["OMNI_API_KEYS"] = json.dumps(
        {key: spec.model_dump() for key, spec in settings.api_keys.items()}
    )
    os.environ[SUPERVISOR_ENV] = str(os.getpid())  # the workers die with this process
    if settings.commit_writers is None:  # the request threads' writers, shared out
        writers = max(1, settings.request_threads // workers)
        os.environ["OMNI_COMMIT_WRITERS"] = str(writers)
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
    )


def _ensure_state(settings: Settings) -> None:
    from service.storage import state

    with store_of(settings.database_url) as engine, engine.begin() as conn:
        built = state.ensure(conn)
    if built is not None:
        console.print(f"online state built from the event log: {built:,} ids")


def replayed(settings: Settings, replay: bool) -> Settings:
    """The settings with the clock at `replay_clock` when asked to replay."""
    return settings.model_copy(update={"clock": replay_clock(settings)}) if replay else settings


def replay_clock(settings: Settings) -> datetime:
    """Noon the day after the store's last event: its "now" when replayed as if live."""
    from sqlalchemy import func, select

    from features import columns as c
    from service.storage.codec import moment
    from service.storage.tables import events

    with store_of(settings.database_url) as engine, engine.connect() as conn:
        last = conn.execute(select(func.max(events.c[c.TS]))).scalar()
    if last is None:
        return datetime.now(UTC)
    day = moment(int(last)).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=1, hours=12)


def _examples(settings: Settings) -> tuple[str, str, str | None]:
    """A customer, an item and a store from the store, for the printed examples."""
    from sqlalchemy import select

    from features import columns as c
    from service.storage.tables import catalogue, customers, stores

    with store_of(settings.database_url) as engine, engine.connect() as conn:
        customer = conn.execute(select(customers.c[c.CUSTOMER_ID]).limit(1)).scalar()
        item = conn.execute(select(catalogue.c[c.ITEM_ID]).limit(1)).scalar()
        shop = conn.execute(select(stores.c[c.STORE_ID]).limit(1)).scalar()
    return customer or "C0000001", item or "I000001", shop


def _with_demo_keys(
    settings: Settings,
    store: str | None,
    host: str,
    port: int,
    customer: str,
    item: str,
) -> Settings:
    admin, tablet = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    manager = secrets.token_urlsafe(16)
    keys = dict(settings.api_keys)
    keys[admin] = ApiKey(name="demo-admin", scopes=list(SCOPES))
    if store:
        keys[tablet] = ApiKey(name=f"demo-tablet-{store}", scopes=TABLET_SCOPES, store_id=store)
        keys[manager] = ApiKey(
            name=f"demo-manager-{store}", scopes=[*TABLET_SCOPES, "admin"], store_id=store
        )
    base = f"http://{host}:{port}"
    console.print(f"[bold]demo admin key[/bold] (this run only): {admin}")
    if store:
        console.print(f"[bold]demo tablet key[/bold] for store {store}: {tablet}")
        console.print(
            f"[bold]demo manager key[/bold] for store {store} (the tablet with the report, "
            f"{base}/tablet/report): {manager}"
        )
    event = {
        "event_id": f"demo-{secrets.token_hex(4)}",
        "ts": settings.now().isoformat(timespec="seconds"),
        "customer_id": customer,
        "channel": "app",
        "type": "add_to_cart",
        "item_id": item,
    }
    auth = f"-H 'X-API-Key: {admin}'"
    lines = [
        "try:",
        f"  curl -s {base}/ready",
        f"  curl -s {auth} '{base}/v1/customers/{customer}/recommendations?k=5'",
        f"  curl -s {auth} '{base}/v1/customers/{customer}/recommendations?k=5&store_id={store}'",
        f"  curl -s {auth} {base}/v1/customers/{customer}/churn",
        f"  curl -s {auth} {base}/v1/customers/{customer}/profile",
        f"  curl -s {auth} {base}/v1/items/{item}/similar",
        f"  curl -s {auth} '{base}/v1/customers/{customer}/next-best-offer?channel=web'",
        f"  curl -s {auth} '{base}/v1/triggers/abandoned-carts?channel=push&limit=10'",
        f"  curl -s {auth} '{base}/v1/reports?experiment=offer-policy'"
        if any(e.name == "offer-policy" for e in settings.experiments)
        else f"  curl -s {auth} {base}/v1/reports",
        f"  curl -s {auth} -H 'Content-Type: application/json' "
        f"-d '{json.dumps({'events': [event]})}' {base}/v1/events",
        f"  every endpoint, with examples: {base}/docs",
    ]
    console.print("\n".join(lines), soft_wrap=True, highlight=False)
    return settings.model_copy(update={"api_keys": keys})
