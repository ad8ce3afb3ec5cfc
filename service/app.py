"""The Omni scoring API: `create_app(settings)` builds it; `omni serve` runs it under uvicorn.

At start the service loads the registry's `champion` (settings.model_alias) of each
model; it answers 503 for what needs a model until one is loaded, and never trains.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from service import tablet
from service.experiments.arms import ArmModels, ListLog
from service.group_commit import GroupCommit
from service.handoff import Handoff
from service.intake import accept_batches
from service.lifecycle import die_with_supervisor
from service.limits import BodyLimit, FailureLimit, validation_error
from service.metrics import Metrics, MetricsMiddleware
from service.routes import (
    customers,
    events,
    items,
    offers,
    ops,
    recommendations,
    reports,
    tracking,
    triggers,
)
from service.serving import ModelHolder, ModelUnavailable
from service.settings import Settings, get_settings
from service.shelf import Shelf
from service.storage import state
from service.storage.engine import open_engine

log = logging.getLogger("omni.service")
TABLET_STATIC = Path(tablet.__file__).with_name("static")


def create_app(settings: Settings | None = None, *, load_models: bool = True) -> FastAPI:
    """The API over the settings' store and registry (models loaded at start-up)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        die_with_supervisor()
        built = await run_in_threadpool(_ensure_state, app.state.engine)
        if built is not None:
            log.info("online state built from the event log: %s ids", f"{built:,}")
        if load_models:
            try:
                for outcome in await run_in_threadpool(app.state.holder.reload):
                    log.info(
                        "%s: %s %s %s",
                        outcome.model,
                        outcome.status,
                        outcome.version or "",
                        outcome.detail,
                    )
                for outcome in await run_in_threadpool(app.state.arm_models.reload):
                    log.info("%s: %s %s %s", outcome.model, outcome.status,
                             outcome.version or "", outcome.detail)  # fmt: skip
                app.state.shelf.warm_for(app.state.holder.current.recommender)
            except Exception as exc:  # the registry may be unreachable: serve, say 503
                log.warning("no models loaded at start: %s", exc)
            app.state.holder.start_polling()
        yield
        app.state.holder.stop()
        app.state.arm_models.stop()
        await run_in_threadpool(app.state.list_log.stop)
        await run_in_threadpool(app.state.handoff.close)
        app.state.engine.dispose()

    app = FastAPI(
        title="Omni",
        version="1",
        summary="Recommendations, churn and customer profiles for every retail channel.",
        lifespan=lifespan,
    )
    engine = open_engine(settings.database_url, migrate=settings.auto_migrate)
    app.state.settings = settings
    app.state.engine = engine
    app.state.holder = ModelHolder(settings)
    app.state.arm_models = ArmModels(settings)
    app.state.list_log = ListLog(engine)
    app.state.shelf = Shelf(engine, settings.stock_ttl_seconds)
    app.state.metrics = Metrics()
    app.state.failures = FailureLimit(settings.auth_failures_per_minute)
    app.state.handoff = Handoff(settings.request_threads, _grace_ms(settings, engine) / 1000)
    app.state.intake = GroupCommit(
        partial(accept_batches, engine),
        app.state.handoff.run,
        settings.commit_group_events,
        writers=_writers(settings, engine),
        on_group=app.state.metrics.commit_group.observe,
    )
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(tablet.TabletRefused, tablet.refused_page)
    for module in (events, tracking, recommendations, items, customers, offers, triggers,
                   reports, ops):  # fmt: skip
        app.include_router(module.router)
    app.include_router(tablet.router)
    app.mount("/tablet/static", StaticFiles(directory=TABLET_STATIC), name="tablet-static")

    @app.exception_handler(PoolTimeout)
    async def busy(_: Request, exc: PoolTimeout) -> JSONResponse:
        # Every database connection is taken: the service is overloaded, say so.
        return JSONResponse(
            {"detail": "the service is busy, retry shortly"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(ModelUnavailable)
    async def unavailable(_: Request, exc: ModelUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "30"})

    return app


def _writers(settings: Settings, engine: Engine) -> int:
    """Groups of events written at once (`Settings.commit_writers`)."""
    if settings.commit_writers is not None:
        return settings.commit_writers
    return 1 if engine.dialect.name == "sqlite" else settings.request_threads


def _grace_ms(settings: Settings, engine: Engine) -> float:
    """How long the loop waits for a request's thread (`Settings.request_grace_ms`)."""
    if settings.request_grace_ms is not None:
        return settings.request_grace_ms
    return 2.0 if engine.dialect.name == "sqlite" else 0.0


def _ensure_state(engine: Engine) -> int | None:
    """Build a missing online state (`omni serve` does it before starting workers; an
    app made otherwise does it here). Another process building it at once is fine."""
    try:
        with engine.begin() as conn:
            return state.ensure(conn)
    except SQLAlchemyError as exc:
        log.warning("online state not built here (another process may be building it): %s", exc)
        return None
