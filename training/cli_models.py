"""`omni train`, `omni recommend`, `omni promote`: the model commands of the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich import box
from rich.table import Table

from models.base import Filters
from training.cli_common import DatabaseOption, console, err, settings_for, store
from training.tracking import RECOMMENDER, NoSuchModelVersion, load_recommender, promote, setup

train_app = typer.Typer(help="Train models, compare them and register the best in MLflow.")
promote_app = typer.Typer(help="Point a registry alias (champion, challenger) at a version.")

UntilOption = Annotated[
    datetime | None,
    typer.Option(help="Use only events before this day (UTC); default: all.", formats=["%Y-%m-%d"]),
]


@train_app.command("recommender")
def train_recommender_command(
    until: UntilOption = None,
    test_days: Annotated[float, typer.Option(help="Days held out as the test window.")] = 28,
    tune: Annotated[
        float,
        typer.Option(
            help="Seconds of hyper-parameter search (optuna) for ALS and the ranker, on the "
            "window before the test window; 0: none."
        ),
    ] = 0,
    database_url: DatabaseOption = None,
) -> None:
    """Train every recommender, evaluate them side by side, log and register the best."""
    from training.train_recommender import SHOWN, NotEnoughData, train_recommender

    settings = settings_for(database_url)
    with store(settings.database_url) as engine:
        try:
            with err.status("training and evaluating every recommender"):
                report = train_recommender(
                    engine, settings, until=_utc(until), test_days=test_days, tune_seconds=tune
                )
        except NotEnoughData as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
    split = report.split
    table = Table(
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
        pad_edge=False,
        title=f"Recommenders: trained before {split.cutoff:%Y-%m-%d}, "
        f"tested {split.cutoff:%Y-%m-%d} to {split.end:%Y-%m-%d} "
        f"({int(report.table['customers'].iloc[0]):,} customers)",
    )
    table.add_column("model", no_wrap=True)
    for heading in SHOWN.values():
        table.add_column(heading, justify="right", min_width=6)
    for name, row in report.table.iterrows():
        mark = " *" if name == report.chosen else ""
        table.add_row(f"{name}{mark}", *[f"{row[col]:.3f}" for col in SHOWN])
    console.print(table)
    console.print(
        "R recall, N NDCG, M MAP; new, warm, cold: N@10 on items new to the customer, "
        "customers with 5+ / fewer items; cov: catalogue coverage@20."
    )
    console.print(
        f"* registered as {RECOMMENDER} version {report.version} (alias challenger); "
        f"promote with: omni promote recommender --alias champion --version {report.version}"
    )


@promote_app.command("recommender")
def promote_recommender(
    alias: Annotated[str, typer.Option(help="The alias to set, e.g. champion.")] = "champion",
    version: Annotated[
        str | None, typer.Option(help="The version; default: the current challenger.")
    ] = None,
) -> None:
    """Point ALIAS at a registered recommender version (the service loads by alias)."""
    client = setup(settings_for(None), RECOMMENDER)
    try:
        chosen = promote(client, RECOMMENDER, alias, version)
    except NoSuchModelVersion as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"{RECOMMENDER} version {chosen} is now '{alias}'")


def recommend(
    customers: Annotated[
        Path,
        typer.Option(help="CSV with a customer_id column (one customer a line).", exists=True),
    ],
    output: Annotated[Path, typer.Option(help="Where to write customer_id,rank,item_id,score.")],
    k: Annotated[int, typer.Option(help="Items per customer.", min=1, max=1000)] = 10,
    model: Annotated[str, typer.Option(help="Registry alias of the model to use.")] = "champion",
    include_purchased: Annotated[
        bool,
        typer.Option(help="Keep items the customer bought recently (default: leave out 30 days)."),
    ] = False,
    until: Annotated[
        datetime | None,
        typer.Option(
            help="Score each customer from their stored events before this day (UTC), folding "
            "in what happened since training; default: the history the model was trained on.",
            formats=["%Y-%m-%d"],
        ),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Batch recommendations for a list of customers, from the registered model.

    Customers the model cannot score (never seen, or no events before --until) get the
    most popular items.
    """
    ids = pd.read_csv(customers, dtype=str)
    if "customer_id" not in ids.columns:
        err.print(f"[red]error:[/red] {customers} has no customer_id column")
        raise typer.Exit(2)
    client = setup(settings_for(None), RECOMMENDER)
    try:
        recommender, version = load_recommender(client, model)
    except NoSuchModelVersion as exc:
        err.print(f"[red]error:[/red] {exc}; train one with: omni train recommender")
        raise typer.Exit(1) from exc
    filters = Filters(exclude_bought_within_days=None if include_purchased else 30)
    wanted = ids["customer_id"].dropna().str.strip().drop_duplicates().tolist()
    history = None
    if until is not None:
        from training.histories import history_as_of

        settings = settings_for(database_url)
        with store(settings.database_url) as engine:
            history = history_as_of(engine, recommender, wanted, until.replace(tzinfo=UTC))
    recs = recommender.recommend_or_popular(wanted, k, filters, history=history)
    output.parent.mkdir(parents=True, exist_ok=True)
    recs.to_csv(output, index=False)
    console.print(
        f"{len(recs):,} recommendations for {len(wanted):,} customers written to {output} "
        f"({RECOMMENDER} version {version}, alias '{model}')"
    )


def _utc(day: datetime | None) -> datetime | None:
    return day.replace(tzinfo=UTC) if day else None
