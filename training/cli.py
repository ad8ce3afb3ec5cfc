"""The `omni` command line: a thin shell over features, training and service storage."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from features.sources.completejourney import read_completejourney
from features.sources.files import SourceError, read_file, read_folder
from features.sources.frame import SourceFrame
from features.sources.mapping import ColumnMapping, MappingError
from features.synthetic import WRITE_FORMATS, SyntheticConfig, write_synthetic
from service.settings import get_settings
from service.storage import state
from service.storage.stats import StoreSummary, summarize
from training.cli_answers import score_answers
from training.cli_common import Bar, DatabaseOption, bars, console, err, settings_for, store
from training.cli_export import export_app
from training.cli_models import promote_app, recommend, score_churn, train_app
from training.cli_privacy import privacy_app
from training.cli_report import report, simulate
from training.cli_serve import serve
from training.ingest import IngestRejected
from training.ingest import ingest as run_ingest

app = typer.Typer(
    help="Omni: personalisation for omnichannel retail. Settings come from OMNI_* variables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(train_app, name="train")
app.add_typer(promote_app, name="promote")
app.command("recommend")(recommend)
score_app = typer.Typer(help="Score customers with a registered model.")
score_app.command("churn")(score_churn)
score_app.command("answers")(score_answers)
app.add_typer(score_app, name="score")
app.command("serve")(serve)
app.add_typer(export_app, name="export")
app.add_typer(privacy_app, name="privacy")
app.command("report")(report)
app.command("simulate")(simulate)


_DEFAULTS = SyntheticConfig()
_DEFAULT_END = _DEFAULTS.end.replace(tzinfo=None)


@app.command("generate")
def generate_data(
    customers: Annotated[
        int, typer.Option("--customers", "-n", help="How many customers (10 to 5,000,000).")
    ] = _DEFAULTS.customers,
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed and sizes give the same files.")
    ] = _DEFAULTS.seed,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder to write into (default: OMNI_DATA_DIR, else data/synthetic)."),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help=f"File format: {', '.join(WRITE_FORMATS)}.")
    ] = "parquet",
    items: Annotated[
        int | None, typer.Option(help="Catalogue size (default grows with customers).")
    ] = None,
    stores: Annotated[
        int | None, typer.Option(help="Physical stores (default grows with customers).")
    ] = None,
    days: Annotated[int, typer.Option(help="Days of history.")] = _DEFAULTS.days,
    end: Annotated[
        datetime, typer.Option(help="Last day of history (UTC).", formats=["%Y-%m-%d"])
    ] = _DEFAULT_END,
    churn_rate: Annotated[
        float, typer.Option(help="Share of customers who stop buying in the window.")
    ] = _DEFAULTS.churn_rate,
) -> None:
    """Generate the synthetic omnichannel data: catalogue, stores, stock, customers, offers, events.

    It also writes the hidden truth (tastes, churners) under truth/ for checking models.
    """
    folder = out or get_settings().data_dir
    if fmt not in WRITE_FORMATS:
        raise typer.BadParameter(f"use one of {', '.join(WRITE_FORMATS)}", param_hint="--format")
    try:
        cfg = SyntheticConfig(
            customers=customers,
            seed=seed,
            items=items,
            stores=stores,
            days=days,
            end=end.replace(tzinfo=UTC),
            churn_rate=churn_rate,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    with bars() as progress:
        task = progress.add_task(f"generating {customers:,} customers", total=None)

        def shard_done(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        counts = write_synthetic(cfg, folder, fmt, on_shard=shard_done)
    table = Table(title=f"Generated into {folder}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in counts.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    console.print(f"ground truth in {folder / 'truth'}; load the data with: omni ingest {folder}")


@app.command()
def ingest(
    path: Annotated[
        Path,
        typer.Argument(
            help="A file (.csv, .parquet, .jsonl) or a folder of them named after their tables.",
            exists=True,
        ),
    ],
    table: Annotated[
        str | None,
        typer.Option(
            help="The table a single file feeds when its name does not say: events, catalogue, "
            "stores, inventory, customers or offers."
        ),
    ] = None,
    source_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="'omni' for files in the Omni schema; 'completejourney' for that folder.",
        ),
    ] = "omni",
    mapping: Annotated[
        Path | None,
        typer.Option(
            help="A JSON column mapping for a file whose columns are named differently "
            "(see docs/mappings/).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    rename: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="Rename a column: --map source=omni_column (repeatable; adds to --mapping).",
        ),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Validate and load events or reference data. All or nothing; re-sent events are skipped."""
    settings = settings_for(database_url)
    try:
        sources = _read(path, table, source_format, mapping, rename or [])
    except (SourceError, MappingError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    with store(settings.database_url) as engine:
        try:
            with bars() as progress:
                report = run_ingest(
                    engine, sources, chunk_rows=settings.chunk_rows, progress=Bar(progress)
                )
        except IngestRejected as exc:
            err.print(f"[red]{exc}[/red]", highlight=False)
            raise typer.Exit(1) from exc
    out = Table(title=f"Ingested {path} in {report.seconds:.1f}s")
    erased = any(a.erased for a in report.applied)
    for col in ("table", "received", "stored", "duplicates", *(["erased"] if erased else [])):
        out.add_column(col, justify="left" if col == "table" else "right")
    for a in report.applied:
        counts = [a.received, a.stored, a.duplicates, *([a.erased] if erased else [])]
        out.add_row(a.table, *[f"{n:,}" for n in counts])
    console.print(out)
    for note in report.notes:
        console.print(f"note: {note}")
    console.print(
        f"identities: {report.anonymous_stitched:,} anonymous ids stitched to customers, "
        f"{report.identity_conflicts:,} conflicts"
    )


def _read(
    path: Path, table: str | None, source_format: str, mapping_file: Path | None, rename: list[str]
) -> list[SourceFrame]:
    if source_format == "completejourney":
        return read_completejourney(path)
    if source_format != "omni":
        raise SourceError(f"unknown --format {source_format!r} (use omni or completejourney)")
    mapping = ColumnMapping.from_file(mapping_file) if mapping_file else None
    if rename:
        pairs = {}
        for item in rename:
            src, sep, dst = item.partition("=")
            if not sep or not src or not dst:
                raise MappingError(f"--map takes source=omni_column, not {item!r}")
            pairs[src] = dst
        mapping = (mapping or ColumnMapping()).model_copy(
            update={"rename": {**(mapping.rename if mapping else {}), **pairs}}
        )
    if path.is_dir():
        if mapping is not None or table is not None:
            raise SourceError("--table, --mapping and --map apply to a single file, not a folder")
        return read_folder(path)
    return [read_file(path, table=table, mapping=mapping)]


@app.command()
def stats(
    database_url: DatabaseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Summarise the store: customers, items, stores, events by channel and type, identities."""
    with store(settings_for(database_url).database_url) as engine:
        summary = summarize(engine)
    if as_json:
        console.print_json(json.dumps(_summary_dict(summary), default=str))
    else:
        _print_summary(summary)


@app.command("rebuild-state")
def rebuild_state(database_url: DatabaseOption = None) -> None:
    """Recompute the online state (per id: events, their span, the latest arrival, open
    cart lines, last purchase per item) from the event log, in one transaction; the
    service keeps answering meanwhile."""
    started = time.perf_counter()
    with store(settings_for(database_url).database_url) as engine, engine.begin() as conn:
        ids = state.rebuild(conn)
    console.print(f"online state rebuilt: {ids:,} ids in {time.perf_counter() - started:.1f} s")


@app.command()
def migrate(database_url: DatabaseOption = None) -> None:
    """Upgrade the store to this release's schema (its data kept); a no-op when it is
    there already. `omni serve`, `omni ingest` and every command do it on their own
    unless OMNI_AUTO_MIGRATE=false."""
    from service.storage.migrate import ensure, head

    with store(settings_for(database_url).database_url, create=False) as engine:
        before = ensure(engine)
    if before == head():
        console.print(f"the store is at schema revision {head()}, this release's newest")
    else:
        was = before or "none (new, or made before migrations)"
        console.print(f"the store is at schema revision {head()} (it was at {was})")


def _summary_dict(s: StoreSummary) -> dict[str, object]:
    grid = s.by_channel_type
    return {
        "customers": s.customers,
        "persons": s.persons,
        "items": s.items,
        "stores": s.stores,
        "inventory_rows": s.inventory_rows,
        "offers": s.offers,
        "events": s.events,
        "first_event": s.first_event,
        "last_event": s.last_event,
        "events_by_channel": {k: int(v) for k, v in grid.sum(axis=1).items()},
        "events_by_type": {k: int(v) for k, v in grid.sum(axis=0).items()},
        "anonymous_ids": s.anonymous_ids,
        "anonymous_stitched": s.anonymous_stitched,
        "customers_merged": s.customers_merged,
        "identity_conflicts": s.identity_conflicts,
    }


def _print_summary(s: StoreSummary) -> None:
    head = Table(title="Omni store", show_header=False)
    head.add_column("what")
    head.add_column("count", justify="right")
    for label, value in (
        ("customers", s.customers),
        ("persons (after stitching)", s.persons),
        ("items", s.items),
        ("stores", s.stores),
        ("inventory rows", s.inventory_rows),
        ("offers", s.offers),
        ("events", s.events),
        ("anonymous ids", s.anonymous_ids),
        ("anonymous ids stitched", s.anonymous_stitched),
        ("customer ids merged", s.customers_merged),
        ("identity conflicts", s.identity_conflicts),
    ):
        head.add_row(label, f"{value:,}")
    if s.first_event:
        head.add_row("first event", f"{s.first_event:%Y-%m-%d %H:%M} UTC")
        head.add_row("last event", f"{s.last_event:%Y-%m-%d %H:%M} UTC")
    console.print(head)
    grid = s.by_channel_type.T
    if grid.empty:
        return
    table = Table(title="Events by type and channel")
    table.add_column("type")
    for col in grid.columns:
        table.add_column(str(col), justify="right")
    table.add_column("total", justify="right")
    for kind, row in grid.iterrows():
        table.add_row(str(kind), *[f"{int(v):,}" for v in row], f"{int(row.sum()):,}")
    table.add_row("total", *[f"{int(v):,}" for v in grid.sum()], f"{int(grid.to_numpy().sum()):,}")
    console.print(table)


if __name__ == "__main__":
    app()
