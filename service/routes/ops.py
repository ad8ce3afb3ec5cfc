"""Health, readiness, Prometheus metrics and model reload."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.auth import Caller, require
from service.deps import ServedDep, off_loop
from service.registry import CHURN, RECOMMENDER
from service.schemas import KEY_ERRORS, ModelStatus, Ready

router = APIRouter(tags=["operations"])


@router.get("/health")
def health() -> dict[str, str]:
    """Alive (the process answers); says nothing about models."""
    return {"status": "ok"}


@router.get("/ready", response_model=Ready, responses={503: {"model": Ready}})
def ready(served: ServedDep) -> Ready | JSONResponse:
    """200 when both models are loaded, with their versions; 503 until then. A model whose
    aliased version was refused at start is served by its last good version, and
    `fallbacks` says so."""
    models = {RECOMMENDER: served.recommender_version, CHURN: served.churn_version}
    body = Ready(ready=all(models.values()), models=models, fallbacks=served.fallbacks)
    if not body.ready:
        return JSONResponse(body.model_dump(), status_code=503)
    return body


@router.get("/metrics", response_class=Response)
def metrics(request: Request, served: ServedDep) -> Response:
    """Prometheus text format: requests and latency per route, events, model versions."""
    state = request.app.state.metrics
    for name, version in ((RECOMMENDER, served.recommender_version), (CHURN, served.churn_version)):
        state.model_version.labels(name).set(float(version or 0))
    return Response(generate_latest(state.registry), media_type=CONTENT_TYPE_LATEST)


@router.post(
    "/v1/admin/reload",
    response_model=list[ModelStatus],
    tags=["operations"],
    responses=KEY_ERRORS,
)
async def reload(
    request: Request, _: Annotated[Caller, Depends(require("admin"))]
) -> list[ModelStatus]:
    """Load the versions the registry alias points at now. Requests keep being answered by
    the old versions until the new ones are loaded and checked; a version that fails is
    refused (status "refused") and the old one keeps serving."""
    outcomes = await off_loop(request, request.app.state.holder.reload)
    outcomes += await off_loop(request, request.app.state.arm_models.reload)
    request.app.state.shelf.warm_for(request.app.state.holder.current.recommender)
    return [ModelStatus(**vars(o)) for o in outcomes]
