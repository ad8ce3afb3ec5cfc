"""What every `omni` command shares: the consoles, the database option, opening the store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from features.progress import reporting
from service.settings import Settings, get_settings
from service.storage.engine import UnsupportedDatabase, open_engine
from service.storage.migrate import SchemaOutdated

console = Console()
err = Console(stderr=True)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL of the event store (default: OMNI_DATABASE_URL, else sqlite:///data/omni.db).",
    ),
]


ReplayOption = Annotated[
    bool,
    typer.Option(
        "--replay",
        help="Read the store as if it were live: its clock at noon the day after its last "
        "event (as `omni serve --replay`).",
    ),
]


class EngineChoice(StrEnum):
    embedded = "embedded"
    spark = "spark"


EngineOption = Annotated[
    EngineChoice | None,
    typer.Option(
        "--engine",
        help="Where the features are computed: embedded (DuckDB in this process) or spark "
        "(the session at OMNI_SPARK_MASTER, local[2] by default). Default: OMNI_BATCH_ENGINE, "
        "else embedded.",
    ),
]
LakeOption = Annotated[
    Path | None,
    typer.Option(
        "--lake",
        exists=True,
        file_okay=False,
        help="Read the events from this lake folder (written by omni export events --format "
        "parquet) instead of the store. Default: OMNI_LAKE_DIR; without one, Spark reads the "
        "store through a temporary lake.",
    ),
]


class Bar:
    """Rich progress for long steps: each step a bar (done of total, rate, time left)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, description: str, total: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self.progress.tasks[-1].total)
        self.task = self.progress.add_task(description, total=max(total, 1))

    def advance(self, done: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, done)


class _Rate(ProgressColumn):
    """Work done per second in the current step (rows, customers, models)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:>10,.0f}/s")


def bars() -> Progress:
    """The progress display every long command writes to standard error."""
    return Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


@contextmanager
def progress_shown() -> Iterator[None]:
    """Within the block, every long step (reading events, fitting, scoring) shows a bar."""
    with bars() as shown, reporting(Bar(shown)):
        yield


@contextmanager
def engine_errors() -> Iterator[None]:
    """A batch engine that cannot run (Spark cannot start, an empty lake) ends the command
    with the reason, not a traceback."""
    from training.batch import EngineUnavailable

    try:
        yield
    except EngineUnavailable as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


def utc_day(day: datetime | None) -> datetime | None:
    """A day given on the command line (no zone) as that day in UTC."""
    return day.replace(tzinfo=UTC) if day else None


def settings_for(database_url: str | None) -> Settings:
    base = get_settings()
    return base.model_copy(update={"database_url": database_url}) if database_url else base


@contextmanager
def store(url: str, *, migrate: bool | None = None, create: bool = True) -> Iterator[Engine]:
    """The store at `url`, at this release's schema (upgraded unless `migrate` is false;
    default: the `auto_migrate` setting; `create` false: as it is); a database that cannot
    be reached or used, or an older schema not to be upgraded, ends the command cleanly."""
    shown = _shown_url(url)
    upgrade = get_settings().auto_migrate if migrate is None else migrate
    try:
        engine = open_engine(url, migrate=upgrade, create=create)
    except SchemaOutdated as exc:
        err.print(f"[red]error:[/red] {shown}: {exc}")
        raise typer.Exit(2) from exc
    except (ArgumentError, NoSuchModuleError, OperationalError, UnsupportedDatabase) as exc:
        err.print(f"[red]error:[/red] cannot open the store at {shown}: {_reason(exc)}")
        raise typer.Exit(2) from exc
    try:
        yield engine
    except OperationalError as exc:
        err.print(f"[red]error:[/red] the store at {shown} failed: {_reason(exc)}")
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()


def _shown_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(url)


def _reason(exc: Exception) -> str:
    original = getattr(exc, "orig", None)
    return str(original or exc).strip().splitlines()[0]
