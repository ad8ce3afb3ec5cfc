"""`omni report` (what Omni added, against the control, and the KPIs) and `omni simulate`
(the synthetic customers answer what they were sent: the demo's outcomes)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from service.settings import Settings
from service.storage.codec import as_utc
from training.cli_common import (
    DatabaseOption,
    ReplayOption,
    console,
    err,
    settings_for,
    store,
)

if TYPE_CHECKING:
    from service.experiments.report import Report

When = Annotated[
    datetime | None,
    typer.Option(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]),
]


def report(
    since: When = None,
    until: When = None,
    experiment: Annotated[
        str | None, typer.Option(help="Report this experiment's arms (default: the holdout).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for report.md, report.json and the plots (PNG)."),
    ] = None,
    days: Annotated[
        float, typer.Option(help="Without --since: the period is this many days before --until.")
    ] = 7.0,
    replay: ReplayOption = False,
    log_to_mlflow: Annotated[
        bool, typer.Option("--mlflow/--no-mlflow", help="Log it to MLflow (omni-reports).")
    ] = True,
    database_url: DatabaseOption = None,
) -> None:
    """Per arm and for the holdout: customers, click and conversion rates, revenue per
    customer, incremental conversion and revenue against the control with 95% intervals;
    attributed purchases; cross-channel conversion, churn rate and customer lifetime
    value. Default period: the 7 days before now (UTC; times without a zone are UTC)."""
    from service.experiments import plots
    from service.experiments.report import build, period_problem
    from service.experiments.summary import markdown, tables

    settings = _clocked(database_url, replay)
    end = as_utc(until) if until else settings.now()
    start = as_utc(since) if since else end - timedelta(days=days)
    wrong = period_problem(start, end)
    if wrong is not None:
        raise typer.BadParameter(wrong[1], param_hint=f"--{wrong[0]}")
    with store(settings.database_url) as engine:
        try:
            made = build(engine, settings, start, end, experiment)
        except LookupError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
    folder = out or Path("reports") / _name(start, end, experiment)
    folder.mkdir(parents=True, exist_ok=True)
    drawn = []
    for name in plots.PLOTS:
        (folder / f"{name}.png").write_bytes(plots.draw(made, name))
        drawn.append(f"{name}.png")
    (folder / "report.json").write_text(json.dumps(made.as_dict(), indent=2) + "\n")
    (folder / "report.md").write_text(markdown(made, drawn))
    for title, columns, rows in tables(made):
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    console.print(f"report, data and plots written to {folder}")
    if log_to_mlflow:
        run_id = _log(settings, made, folder)
        console.print(f"logged to MLflow (experiment omni-reports, run {run_id})")


def simulate(
    days: Annotated[float, typer.Option(help="Days the customers have to answer.")] = 7.0,
    take: Annotated[
        float, typer.Option(help="The chance a customer given an offer takes it.")
    ] = 0.25,
    since: When = None,
    seed: Annotated[int, typer.Option(help="Seed of the customers' draws.")] = 0,
    replay: ReplayOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """The synthetic customers answer what Omni sent them (and the held-out ones what
    they would have been sent) since --since (default: a day before now): each buys
    anyway with their own chance, and one given an offer takes it with --take. For the
    demo and simulations only: it writes made-up events into the store."""
    import numpy as np
    import pandas as pd

    from features import columns as c
    from features.sources.frame import SourceFrame
    from features.synthetic.response import HISTORY_DAYS, base_chance, respond
    from service.experiments.attribution import purchases_of
    from service.experiments.report import HOLDOUT, TREATED
    from service.storage import exposures
    from service.storage.reader import load_table, recent_events
    from training.ingest import ingest

    settings = _clocked(database_url, replay)
    now = settings.now()
    start = as_utc(since) if since else now - timedelta(days=1)
    with store(settings.database_url) as engine:
        with engine.connect() as conn:
            shown = exposures.read(conn, start, now + timedelta(seconds=1))
        shown = shown[shown[c.KIND] != exposures.RECOMMENDATIONS]
        if shown.empty:
            err.print(f"[yellow]nothing was sent (or held back) since {start:%Y-%m-%d %H:%M}[/]")
            raise typer.Exit(0)
        group = np.where(shown["held_by"].notna(), HOLDOUT, TREATED)
        shown = shown.assign(group=group)
        recent = now - timedelta(days=HISTORY_DAYS)
        bought = purchases_of(recent_events(engine, since=recent, until=now, types=["purchase"]))
        base = base_chance(bought, pd.Index(shown[c.PERSON_ID].unique()), pd.Timestamp(now), days)
        answers = respond(shown, base, {TREATED: take}, load_table(engine, "catalogue"),
                          load_table(engine, "offers"), days, seed)  # fmt: skip
        where = pd.Series([f"simulated answer {i + 1}" for i in range(len(answers.events))])
        ingest(engine, [SourceFrame("events", "simulated answers", answers.events, where)])
    truth = answers.truth
    treated = truth[truth["treated"]]
    console.print(
        f"{len(answers.events):,} events from {len(truth):,} contacted customers: "
        f"{int(truth['took'].sum()):,} took their offer, "
        f"{int(truth['bought_anyway'].sum()):,} bought anyway; the true incremental "
        f"conversion of the treated is {take * float((1 - treated['p_base']).mean()):.1%}"
    )


def _clocked(database_url: str | None, replay: bool) -> Settings:
    from training.cli_serve import replayed

    return replayed(settings_for(database_url), replay)


def _name(start: datetime, end: datetime, experiment: str | None) -> str:
    name = f"{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}"
    return f"{experiment}-{name}" if experiment else f"holdout-{name}"


def _log(settings: Settings, made: Report, folder: Path) -> str:
    import mlflow

    from training.tracking import setup

    setup(settings, "omni-reports")
    with mlflow.start_run(run_name=folder.name) as run:
        mlflow.log_params({"since": made.since.isoformat(), "until": made.until.isoformat(),
                           "experiment": made.experiment or "holdout",
                           "attribution_days": made.attribution_days})  # fmt: skip
        metrics: dict[str, float] = {}
        for g in made.groups:
            metrics[f"{g.name}/customers"] = g.customers
            if g.conversion.estimate == g.conversion.estimate:
                metrics[f"{g.name}/conversion"] = g.conversion.estimate
            metrics[f"{g.name}/revenue_per_customer"] = g.revenue_per_customer
        for x in made.comparisons:
            for key, d in (("conversion", x.conversion), ("revenue", x.revenue_per_customer)):
                for part in ("estimate", "low", "high"):
                    value = getattr(d, part)
                    if value == value:
                        metrics[f"{x.group}_vs_{x.control}/{key}_{part}"] = value
        ltv, churn, cc = made.lifetime_value, made.churn, made.cross_channel
        for key, value in (("kpi/churn_rate", churn.rate),
                           ("kpi/cross_channel_share", cc.share_of_buyers),
                           ("kpi/clv_12m_mean", ltv.predicted_12m_mean),
                           ("kpi/historic_value_mean", ltv.historic_mean)):  # fmt: skip
            if value == value:
                metrics[key] = value
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(folder))
        return str(run.info.run_id)
