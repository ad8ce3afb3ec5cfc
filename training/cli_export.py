"""`omni export offers|triggers`: tonight's marketing batches as CSV files."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer

from training.cli_common import (
    DatabaseOption,
    EngineOption,
    LakeOption,
    ReplayOption,
    console,
    engine_errors,
    err,
    progress_shown,
    settings_for,
    store,
    utc_day,
)

if TYPE_CHECKING:
    from training.batch import EngineName

export_app = typer.Typer(help="Batches for marketing, honouring the contact policy.")
Channel = Annotated[str, typer.Option(help="Outbound channel: email, push or sms.")]
Output = Annotated[Path, typer.Option(help="CSV file to write.")]


@export_app.command("offers")
def export_offers_command(
    channel: Channel,
    output: Output,
    engine: EngineOption = None,
    lake: LakeOption = None,
    replay: ReplayOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Each reachable customer's next-best offer (the same decision every channel gets),
    recorded against the contact caps. With --engine spark the candidates are ranked on
    Spark's executors (and missing churn answers scored there); the decisions are made
    here, against the store's ledgers."""
    from service.decisioning.exports import export_offers

    _export(
        export_offers,
        channel,
        output,
        database_url,
        "offers",
        batch=None if engine is None else engine.value,
        lake=lake,
        replay=replay,
    )


@export_app.command("triggers")
def export_triggers_command(
    channel: Channel,
    output: Output,
    replay: ReplayOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Abandoned carts due a message in the channel, each handed out once, within the caps."""
    from service.decisioning.exports import export_triggers

    _export(export_triggers, channel, output, database_url, "triggers", replay=replay)


@export_app.command("events")
def export_events_command(
    output: Annotated[Path, typer.Option(help="The lake folder: one day=YYYY-MM-DD folder a day.")],
    fmt: Annotated[str, typer.Option("--format", help="File format: parquet.")] = "parquet",
    since: Annotated[
        datetime | None,
        typer.Option(help="First day (UTC); default: the first event.", formats=["%Y-%m-%d"]),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(help="Day after the last (UTC); default: all.", formats=["%Y-%m-%d"]),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """The event log as Parquet files partitioned by day, for Spark or any lake engine
    (a day written again replaces that day's files)."""
    from service.storage.lake import write_lake

    if fmt != "parquet":
        raise typer.BadParameter(
            f"the lake is written as parquet, not {fmt!r}", param_hint="--format"
        )
    settings = settings_for(database_url)
    with store(settings.database_url) as engine, progress_shown():
        written = write_lake(
            engine,
            output,
            since=utc_day(since),
            until=utc_day(until),
            chunk_rows=settings.chunk_rows,
        )
    console.print(
        f"{written.rows:,} events of {written.days:,} day(s) written to {output} "
        f"in {written.seconds:.1f} s"
    )


def _export(
    make: Callable[..., pd.DataFrame],
    channel: str,
    output: Path,
    database_url: str | None,
    what: str,
    *,
    batch: EngineName | None = None,
    lake: Path | None = None,
    replay: bool = False,
) -> None:
    from service.decisioning.contact_policy import UnknownChannel
    from service.decisioning.exports import QuietHours
    from service.serving import ModelHolder
    from service.shelf import Shelf
    from training.cli_answers import refresh_answers
    from training.cli_serve import replayed

    settings = replayed(settings_for(database_url), replay)
    # Everyone's churn answer is read from the batch answers, not computed from histories:
    # scored first when the served model's are missing or too old (as `omni serve` does).
    with engine_errors():
        refresh_answers(settings, only_if_stale=True, batch=batch, lake=lake)
    # No precomputed top items for every known customer (what a server warms for its
    # requests): a batch ranks only the customers it decides for, once.
    holder = ModelHolder(settings.model_copy(update={"warm_top_n": 0}))
    for outcome in holder.reload():
        if outcome.status != "loaded":
            err.print(f"[yellow]note:[/yellow] {outcome.model}: {outcome.status} {outcome.detail}")
    extra = {}
    model = holder.current.recommender
    if (batch or settings.batch_engine) == "spark" and model is not None:
        from training.batch import spark_engine
        from training.recommendation_scores import top_positions_on_spark

        with engine_errors():
            spark = spark_engine(settings)
        extra["rank"] = partial(top_positions_on_spark, spark, model)
    with store(settings.database_url) as engine, progress_shown():
        try:
            frame = make(
                engine,
                holder.current,
                Shelf(engine, 3600),
                settings,
                channel,
                settings.now(),
                **extra,
            )
        except (UnknownChannel, QuietHours) as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
    output.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(output, index=False)
    console.print(f"{len(frame):,} {what} for {channel} written to {output}")
