"""`omni serve`: the scoring API under uvicorn (the service itself lives in service/)."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer

from service.settings import SCOPES, ApiKey, Settings
from training.cli_common import DatabaseOption, console, settings_for

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
    database_url: DatabaseOption = None,
) -> None:
    """Serve the API: loads the registry's champion models, answers until stopped."""
    import uvicorn

    from service.app import create_app

    settings = settings_for(database_url)
    if demo_keys:
        settings = _with_demo_keys(settings, store, host, port)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


def _with_demo_keys(settings: Settings, store: str | None, host: str, port: int) -> Settings:
    admin, tablet = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    keys = dict(settings.api_keys)
    keys[admin] = ApiKey(name="demo-admin", scopes=list(SCOPES))
    if store:
        keys[tablet] = ApiKey(name=f"demo-tablet-{store}", scopes=TABLET_SCOPES, store_id=store)
    base = f"http://{host}:{port}"
    console.print(f"[bold]demo admin key[/bold] (this run only): {admin}")
    if store:
        console.print(f"[bold]demo tablet key[/bold] for store {store}: {tablet}")
    console.print(
        "try:\n"
        f"  curl -s {base}/ready\n"
        f"  curl -s -H 'X-API-Key: {admin}' '{base}/v1/customers/C000001/recommendations?k=5'\n"
        f"  curl -s -H 'X-API-Key: {admin}' {base}/v1/customers/C000001/churn\n"
        f"  curl -s -H 'X-API-Key: {admin}' {base}/v1/customers/C000001/profile\n"
        f"  curl -s -H 'X-API-Key: {admin}' -H 'Content-Type: application/json' "
        f'-d \'{{"events": [{{"event_id": "demo-1", "ts": "2026-11-23T09:00:00Z", '
        f'"customer_id": "C000001", "channel": "app", "type": "view", '
        f'"item_id": "I00001"}}]}}\' {base}/v1/events\n'
        f"  open {base}/docs for every endpoint with examples"
    )
    return settings.model_copy(update={"api_keys": keys})
