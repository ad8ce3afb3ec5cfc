"""`omni export offers|triggers`: tonight's marketing batches as CSV files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from training.cli_common import DatabaseOption, console, err, progress_shown, settings_for, store

export_app = typer.Typer(help="Batches for marketing, honouring the contact policy.")
Channel = Annotated[str, typer.Option(help="Outbound channel: email, push or sms.")]
Output = Annotated[Path, typer.Option(help="CSV file to write.")]


@export_app.command("offers")
def export_offers_command(
    channel: Channel, output: Output, database_url: DatabaseOption = None
) -> None:
    """Each reachable customer's next-best offer (the same decision every channel gets),
    recorded against the contact caps."""
    from service.decisioning.exports import export_offers

    _export(export_offers, channel, output, database_url, "offers")


@export_app.command("triggers")
def export_triggers_command(
    channel: Channel, output: Output, database_url: DatabaseOption = None
) -> None:
    """Abandoned carts due a message in the channel, each handed out once, within the caps."""
    from service.decisioning.exports import export_triggers

    _export(export_triggers, channel, output, database_url, "triggers")


def _export(
    make: Callable[..., pd.DataFrame],
    channel: str,
    output: Path,
    database_url: str | None,
    what: str,
) -> None:
    from service.decisioning.contact_policy import UnknownChannel
    from service.decisioning.exports import QuietHours
    from service.serving import ModelHolder
    from service.shelf import Shelf

    settings = settings_for(database_url)
    holder = ModelHolder(settings)
    for outcome in holder.reload():
        if outcome.status != "loaded":
            err.print(f"[yellow]note:[/yellow] {outcome.model}: {outcome.status} {outcome.detail}")
    with store(settings.database_url) as engine, progress_shown():
        try:
            frame = make(
                engine, holder.current, Shelf(engine, 3600), settings, channel, settings.now()
            )
        except (UnknownChannel, QuietHours) as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
    output.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(output, index=False)
    console.print(f"{len(frame):,} {what} for {channel} written to {output}")
