"""The report over HTTP (scope `admin`): what Omni added against the control, and the KPIs."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BeforeValidator

from service.auth import Caller, require
from service.deps import NowDep, SettingsDep, off_loop, refuse
from service.experiments import plots
from service.experiments.report import Report, build, period_problem
from service.schemas import KEY_ERRORS, Problem
from service.storage.codec import as_utc

router = APIRouter(prefix="/v1/reports", tags=["reports"], responses=KEY_ERRORS)
Admin = Annotated[Caller, Depends(require("admin"))]


def _not_a_number(value: object) -> object:
    """A time is written in ISO 8601: a bare number (read as seconds since 1970 by the
    parser) is refused rather than guessed."""
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+(\.\d*)?\s*", value):
        raise ValueError("must be a date and time in ISO 8601, e.g. 2026-11-01T00:00:00Z")
    return value


Since = Annotated[
    datetime | None,
    BeforeValidator(_not_a_number),
    Query(description="Start (ISO 8601; default: 7 days before `until`)."),
]
Until = Annotated[
    datetime | None,
    BeforeValidator(_not_a_number),
    Query(description="End, excluded (ISO 8601; default: now)."),
]
ExperimentName = Annotated[
    str | None, Query(description="An experiment's arms (default: the global holdout).")
]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No experiment has this name."}
}


async def made(
    request: Request,
    settings: SettingsDep,
    now: NowDep,
    since: Since = None,
    until: Until = None,
    experiment: ExperimentName = None,
) -> Report:
    """The report asked for, built in the thread pool (it reads a period of events)."""
    end = as_utc(until) if until else now
    start = as_utc(since) if since else end - timedelta(days=7)
    wrong = period_problem(start, end)
    if wrong is not None:
        raise refuse("query", *wrong)
    try:
        return await off_loop(request, build, request.app.state.engine, settings, start, end,
                                       experiment)  # fmt: skip
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


ReportDep = Annotated[Report, Depends(made)]


@router.get("", responses=NOT_FOUND)
def get_report(_: Admin, report: ReportDep) -> dict[str, Any]:
    """Per arm and for the holdout: customers, exposures, click and conversion rates,
    revenue per customer; incremental conversion and revenue against the control with 95%
    intervals; attributed purchases (direct, last touch, any touch); cross-channel
    conversion, churn rate, and historic and predicted 12-month customer value."""
    return report.as_dict()


@router.get(
    "/plots/{name}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **NOT_FOUND},
)
async def get_plot(name: str, _: Admin, report: ReportDep) -> Response:
    """One of the report's plots: `conversion`, `uplift` or `lifetime_value`."""
    if name not in plots.PLOTS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no plot is named '{name}'")
    png = await run_in_threadpool(plots.draw, report, name)
    return Response(png, media_type="image/png")
