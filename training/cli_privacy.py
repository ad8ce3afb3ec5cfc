"""`omni privacy`: erasure in the registry, retention, a person's data on request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from service.retention import apply_retention
from training.cli_common import DatabaseOption, console, err, settings_for, store

privacy_app = typer.Typer(help="Privacy rights and retention: scrub models, delete old events.")


@privacy_app.command("scrub")
def scrub(database_url: DatabaseOption = None) -> None:
    """Remove erased people from every registered recommender version: each version that
    still holds one is replaced by a scrubbed copy (registered with the reason, aliases
    moved, no retraining) and deleted with its model files. Run it after erasures (e.g.
    nightly); the service treats erased people as strangers meanwhile."""
    from training.scrub import scrub_recommenders

    settings = settings_for(database_url)
    with store(settings.database_url) as engine:
        done = scrub_recommenders(engine, settings)
    if not done:
        console.print("no registered version holds an erased person")
    for s in done:
        moved = f", aliases {', '.join(s.aliases)} moved" if s.aliases else ""
        console.print(
            f"omni-recommender version {s.version} -> {s.replaced_by}: "
            f"{s.people:,} erased people removed{moved}; version {s.version} deleted"
        )


@privacy_app.command("retention")
def retention(
    days: Annotated[
        float | None,
        typer.Option(help="Delete events older than this (default: OMNI_RETENTION_DAYS).", min=1),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Delete events older than the retention limit, with the anonymous ids, contacts,
    triggers and closed decisions only they held, and recompute the online state; one
    transaction."""
    settings = settings_for(database_url)
    days = days or settings.retention_days
    if days is None:
        err.print("[red]error:[/red] no retention limit: set OMNI_RETENTION_DAYS or --days")
        raise typer.Exit(2)
    with store(settings.database_url) as engine:
        removed = apply_retention(engine, days, settings.now())
    console.print(
        f"before {removed.before:%Y-%m-%d %H:%M} UTC: {removed.events:,} events, "
        f"{removed.anonymous_ids:,} anonymous ids, {removed.contacts:,} contacts, "
        f"{removed.triggers:,} triggers, {removed.decisions:,} closed decisions, "
        f"{removed.exposures:,} exposures deleted"
    )


@privacy_app.command("export")
def export(
    customer_id: Annotated[str, typer.Argument(help="The customer whose data to export.")],
    output: Annotated[Path, typer.Option(help="Where to write the JSON.")],
    database_url: DatabaseOption = None,
) -> None:
    """Everything Omni holds about the person of CUSTOMER_ID, as JSON (right of access):
    the same document as GET /v1/customers/{id}/export."""
    from service.access import person_export
    from service.people import find_person

    settings = settings_for(database_url)
    with store(settings.database_url) as engine, engine.connect() as conn:
        person = find_person(conn, customer_id=customer_id)
        if person is None:
            err.print(f"[red]error:[/red] no customer has the id '{customer_id}'")
            raise typer.Exit(1)
        document = person_export(conn, person, settings.now())
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2, default=str))
    console.print(
        f"{len(document['events']):,} events and every record of {customer_id} written to {output}"
    )
