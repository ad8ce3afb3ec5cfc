"""`omni train`, `omni recommend`, `omni promote`: the model commands of the CLI."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from mlflow import MlflowClient
from rich import box
from rich.table import Table
from sqlalchemy import Engine

from models.base import Filters
from service.erasure import erased_ids
from service.registry import RECOMMENDER, NoSuchModelVersion, load_recommender, version_of
from service.settings import Settings
from training.cli_common import (
    DatabaseOption,
    EngineOption,
    LakeOption,
    console,
    engine_errors,
    err,
    progress_shown,
    settings_for,
    store,
    utc_day,
)
from training.gate import Verdict
from training.tracking import promote, setup

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
    engine: EngineOption = None,
    lake: LakeOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Train every recommender, evaluate them side by side, log and register the best."""
    from training.train_recommender import SHOWN, NotEnoughData, train_recommender

    settings = settings_for(database_url)
    with store(settings.database_url) as db:
        try:
            with progress_shown(), engine_errors():
                report = train_recommender(
                    db,
                    settings,
                    until=utc_day(until),
                    test_days=test_days,
                    tune_seconds=tune,
                    batch=None if engine is None else engine.value,
                    lake=lake,
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
        f"({_scored(report.table)})",
    )
    table.add_column("model", no_wrap=True)
    for heading in SHOWN.values():
        table.add_column(heading, justify="right", min_width=6)
    for name, row in report.table.iterrows():
        mark = " *" if name == report.chosen else ""
        table.add_row(f"{name}{mark}", *[f"{row[col]:.3f}" for col in SHOWN])
    console.print(table)
    console.print(
        "The default answer (the repeat policy) is scored. R recall, N NDCG, M MAP; rep, new: "
        "N@10 on items bought before / new to the customer; any: N@10 with every item "
        "(include_purchased); warm, cold: customers with 5+ / fewer items; cov: catalogue "
        "coverage@20."
    )
    console.print(
        f"* registered as {RECOMMENDER} version {report.version} (alias challenger); "
        f"promote with: omni promote recommender --alias champion --version {report.version}"
    )


def _scored(table: pd.DataFrame) -> str:
    """How many test customers were scored: all, or a sample of how many."""
    scored = int(table["customers"].iloc[0])
    eligible = int(table["eligible_customers"].iloc[0])
    if scored < eligible:
        return f"a seeded sample of {scored:,} of {eligible:,} customers"
    return f"{scored:,} customers"


FORCE = typer.Option(
    help="Promote even when the quality gate refuses the version (its reasons are printed)."
)


def gated_promote(
    settings: Settings,
    name: str,
    gate: Callable[[Engine, MlflowClient, str, str, float], Verdict],
    alias: str,
    version: str | None,
    force: bool,
) -> str:
    """Point `alias` at `version` (default: the challenger) of model `name`; to the served
    alias only past `gate` (or with `force`). Exits 1 on an unknown version or a refusal."""
    client = setup(settings, name)
    try:
        chosen = version or version_of(client, name, "challenger")
        if alias == settings.model_alias:
            with store(settings.database_url) as engine:
                verdict = gate(engine, client, chosen, alias, settings.promote_margin)
            judged(name, chosen, verdict, force)
        chosen = promote(client, name, alias, chosen)
    except NoSuchModelVersion as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"{name} version {chosen} is now '{alias}'")
    return chosen


def judged(name: str, version: str, verdict: Verdict, force: bool) -> None:
    """Print the gate's verdict; exit 1 when it refuses and --force was not given."""
    for note in verdict.notes:
        console.print(f"{name} version {version}: {note}")
    for why in verdict.refusals:
        err.print(f"[red]refused:[/red] {name} version {version}: {why}")
    if verdict.refusals and not force:
        err.print("promote it anyway with --force")
        raise typer.Exit(1)


@promote_app.command("recommender")
def promote_recommender(
    alias: Annotated[str, typer.Option(help="The alias to set, e.g. champion.")] = "champion",
    version: Annotated[
        str | None, typer.Option(help="The version; default: the current challenger.")
    ] = None,
    force: Annotated[bool, FORCE] = False,
) -> None:
    """Point ALIAS at a registered recommender version (the service loads by alias).

    To the served alias, only through the quality gate: a version that does not fit the
    store, or is worse than the current one on its holdout, is refused (see --force)."""
    from training.gate import recommender_gate

    settings = settings_for(None)
    gated_promote(settings, RECOMMENDER, recommender_gate, alias, version, force)


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
        typer.Option(
            help="Keep every item the customer bought (default: the repeat policy leaves out "
            "what they are unlikely to buy again soon)."
        ),
    ] = False,
    until: Annotated[
        datetime | None,
        typer.Option(
            help="Score each customer from their stored events before this day (UTC), folding "
            "in what happened since training; default: the history the model was trained on.",
            formats=["%Y-%m-%d"],
        ),
    ] = None,
    batch: EngineOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Batch recommendations for a list of customers, from the registered model (ranked
    here, or with --engine spark on Spark's executors, the model broadcast to them).

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
    # Purchase ages count to the day the list is for: --until, else now.
    at = pd.Timestamp(until.replace(tzinfo=UTC) if until is not None else datetime.now(UTC))
    filters = Filters.default_answer(at, include_purchased=include_purchased)
    wanted = ids["customer_id"].dropna().str.strip().drop_duplicates().tolist()
    if until is not None and batch == "spark":
        err.print("[red]error:[/red] --until folds in stored events: run it on the embedded engine")
        raise typer.Exit(2)
    history = None
    settings = settings_for(database_url)
    with store(settings.database_url) as engine:
        with engine.connect() as conn:  # an erased person is a stranger here too
            recommender = recommender.without({value for _, value in erased_ids(conn)})
        if until is not None:
            from training.histories import history_as_of

            history = history_as_of(engine, recommender, wanted, until.replace(tzinfo=UTC))
    if (batch or settings.batch_engine) == "spark":
        from training.batch import spark_engine
        from training.recommendation_scores import recommend_on_spark

        with engine_errors():
            spark = spark_engine(settings)
        recs = recommend_on_spark(spark, recommender, wanted, k, filters)
    else:
        recs = recommender.recommend_or_popular(wanted, k, filters, history=history)
    output.parent.mkdir(parents=True, exist_ok=True)
    recs.to_csv(output, index=False)
    console.print(
        f"{len(recs):,} recommendations for {len(wanted):,} customers written to {output} "
        f"({RECOMMENDER} version {version}, alias '{model}')"
    )


@train_app.command("churn")
def train_churn_command(
    as_of: Annotated[
        datetime | None,
        typer.Option(
            help="The test cutoff (UTC); its horizon must be in the data. Default: the "
            "latest such day.",
            formats=["%Y-%m-%d"],
        ),
    ] = None,
    horizon_days: Annotated[
        float, typer.Option(help="No purchase in this many days after a cutoff = churned.")
    ] = 90,
    lookback_days: Annotated[
        float, typer.Option(help="Customers with a purchase in this many days are scored.")
    ] = 365,
    engine: EngineOption = None,
    lake: LakeOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Train the churn model out of time, compare it with recency and BG/NBD, register it."""
    from training.train_churn import NotEnoughHistory, train_churn

    settings = settings_for(database_url)
    with store(settings.database_url) as db:
        try:
            with progress_shown(), engine_errors():
                report = train_churn(
                    db,
                    settings,
                    as_of=utc_day(as_of),
                    horizon_days=horizon_days,
                    lookback_days=lookback_days,
                    batch=None if engine is None else engine.value,
                    lake=lake,
                )
        except NotEnoughHistory as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
    cuts = report.cutoffs
    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"Churn in {horizon_days:g} days after {cuts[-1]:%Y-%m-%d} (trained on "
        f"{', '.join(f'{cut:%Y-%m-%d}' for cut in cuts[:-2])}; calibrated on {cuts[-2]:%Y-%m-%d}; "
        f"the model registered is refit with the cutoffs {report.refit_cutoffs[0]:%Y-%m-%d} to "
        f"{report.refit_cutoffs[-1]:%Y-%m-%d})",
    )
    table.add_column("model")
    shown = [col for col in report.table.columns if col != "fitted"]
    for col in shown:
        table.add_column(col, justify="right")
    for name, row in report.table.iterrows():
        if row["fitted"]:
            table.add_row(str(name), *[f"{row[col]:.3f}" for col in shown])
        else:
            table.add_row(str(name), "did not fit", *[""] * (len(shown) - 1))
    console.print(table)
    console.print(
        f"registered as omni-churn version {report.version} (alias challenger); promote with: "
        f"omni promote churn --alias champion --version {report.version}"
    )


@promote_app.command("churn")
def promote_churn(
    alias: Annotated[str, typer.Option(help="The alias to set, e.g. champion.")] = "champion",
    version: Annotated[
        str | None, typer.Option(help="The version; default: the current challenger.")
    ] = None,
    replay: Annotated[
        bool,
        typer.Option(
            help="Score the answers as of noon the day after the last stored event (the "
            "clock `omni serve --replay` uses)."
        ),
    ] = False,
    force: Annotated[bool, FORCE] = False,
) -> None:
    """Point ALIAS at a registered churn model version (the served alias: through the
    quality gate, and every person's churn answer is scored once, now)."""
    from service.registry import CHURN
    from training.cli_answers import refresh_answers
    from training.cli_serve import replayed
    from training.gate import churn_gate

    settings = replayed(settings_for(None), replay)
    gated_promote(settings, CHURN, churn_gate, alias, version, force)
    if alias == settings.model_alias:  # the served version: score everyone once now
        refresh_answers(settings)


def score_churn(
    as_of: Annotated[
        datetime,
        typer.Option(help="Score from events before this day (UTC).", formats=["%Y-%m-%d"]),
    ],
    output: Annotated[
        Path, typer.Option(help="Where to write customer_id,churn_probability,band,top_drivers.")
    ],
    customers: Annotated[
        Path | None,
        typer.Option(help="CSV with a customer_id column; default: the whole population."),
    ] = None,
    model: Annotated[str, typer.Option(help="Registry alias of the model to use.")] = "champion",
    lookback_days: Annotated[
        float | None,
        typer.Option(
            help="Population: a purchase in this many days (default: the model's lookback)."
        ),
    ] = None,
    engine: EngineOption = None,
    lake: LakeOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Churn scores for the population at a date, from the registered model: the features
    computed by the batch engine, each person scored where their rows are."""
    from service.registry import connect, load_churn
    from service.storage.identities import load_identities
    from training.batch import EngineName, batch_engine
    from training.churn_scores import score_everyone

    settings = settings_for(database_url)
    try:
        churn, version = load_churn(connect(settings), model)
    except NoSuchModelVersion as exc:
        err.print(f"[red]error:[/red] {exc}; train one with: omni train churn")
        raise typer.Exit(1) from exc
    cutoff = as_of.replace(tzinfo=UTC)
    lookback = churn.lookback_days_ if lookback_days is None else lookback_days
    name: EngineName | None = None if engine is None else engine.value
    with store(settings.database_url) as db, progress_shown(), engine_errors():
        with db.connect() as conn:
            identities = load_identities(conn)
        with batch_engine(db, settings, name=name, lake=lake, until=cutoff) as on:
            out = score_everyone(
                on, churn, identities, as_of=pd.Timestamp(cutoff), lookback_days=lookback
            )
    if customers is not None:
        wanted = pd.read_csv(customers, dtype=str)["customer_id"].dropna().str.strip()
        out = out[out["customer_id"].isin(set(wanted))]
    out = out.assign(top_drivers=out["top_drivers"].map("; ".join))
    output.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(output, index=False)
    console.print(
        f"{len(out):,} customers scored at {cutoff:%Y-%m-%d} into {output} "
        f"(omni-churn version {version}, alias '{model}')"
    )
