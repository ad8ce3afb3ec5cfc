"""Erasure in the registry: registered recommenders lose the rows of erased people.

The service treats an erased person as a stranger from the moment of erasure (it reads
the erasure ledger per request). This job makes the registry agree without retraining:
each registered version is checked once for each erasure, and one that holds an
erased person is replaced by a scrubbed copy (`Recommender.without`) registered as a new
version with the reason, its aliases moved to it; the old version and its model files are
deleted. Its run (parameters, metrics, comparison tables) stays: it holds no person.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
from mlflow import MlflowClient
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from sqlalchemy import Engine

from models.base import Recommender
from service.erasure import erased_ids
from service.registry import READ_AT_TAG, RECOMMENDER, load_recommender, read_at_of
from service.settings import Settings
from training.tracking import log_recommender, setup

#: Version tag: erasures up to this time (microseconds) are known to be out of it.
CLEAN_UNTIL_TAG = "erasures_clean_until"
#: Tags of the scrubbed version: the version it replaces and why.
SCRUBBED_FROM_TAG = "scrubbed_from_version"
REASON_TAG = "scrub_reason"


@dataclass(frozen=True)
class Scrubbed:
    """One registered version replaced: which, by which, how many people it lost."""

    version: str
    replaced_by: str
    people: int
    aliases: tuple[str, ...]


def scrub_recommenders(engine: Engine, settings: Settings) -> list[Scrubbed]:
    """Replace every registered recommender version that holds an erased person."""
    with engine.connect() as conn:
        # A person's id is one of their ids: matching on the values finds their row.
        erased: dict[str, int] = {}
        for (_, value), at in erased_ids(conn).items():
            erased[value] = max(at, erased.get(value, at))
    if not erased:
        return []
    latest = max(erased.values())
    client = setup(settings, RECOMMENDER)
    done = []
    for found in client.search_model_versions(f"name='{RECOMMENDER}'"):
        version = str(found.version)
        # Each version is checked once for each erasure (then tagged clean up to it).
        clean_until = int(found.tags.get(CLEAN_UNTIL_TAG, -1))
        pending = [i for i, at in erased.items() if at > clean_until]
        if not pending:
            continue
        model, _ = load_recommender(client, "", version)
        scrubbed = model.without(pending)
        if scrubbed is model:
            client.set_model_version_tag(RECOMMENDER, version, CLEAN_UNTIL_TAG, str(latest))
            continue
        people = len(model.users_) - len(scrubbed.users_)
        new = _register(client, version, scrubbed, people, latest)
        # (search results may leave aliases out: read the version itself)
        aliases = tuple(client.get_model_version(RECOMMENDER, version).aliases)
        for alias in aliases:
            client.set_registered_model_alias(RECOMMENDER, alias, new)
        _delete_version(client, version)
        done.append(Scrubbed(version, new, people, aliases))
    return done


def _register(
    client: MlflowClient, version: str, scrubbed: Recommender, people: int, at: int
) -> str:
    """Log the scrubbed model in a run of its own that carries the source run's tags
    (when training read the log), parameters and metrics."""
    source = client.get_run(str(client.get_model_version(RECOMMENDER, version).run_id))
    reason = f"erasure: {people} people removed from version {version}"
    tags = {k: v for k, v in source.data.tags.items() if not k.startswith("mlflow.")}
    # Freshness counts from when the source's training read the log, not from now.
    tags[READ_AT_TAG] = read_at_of(client, RECOMMENDER, version).isoformat()
    tags |= {SCRUBBED_FROM_TAG: version, REASON_TAG: reason}
    with mlflow.start_run(run_name=f"scrub of version {version}", tags=tags):
        mlflow.log_params(source.data.params)
        mlflow.log_metrics(source.data.metrics)
        new = log_recommender(scrubbed, client, alias=None)
    for key, value in ((SCRUBBED_FROM_TAG, version), (REASON_TAG, reason)):
        client.set_model_version_tag(RECOMMENDER, new, key, value)
    client.set_model_version_tag(RECOMMENDER, new, CLEAN_UNTIL_TAG, str(at))
    client.update_model_version(RECOMMENDER, new, description=reason)
    return new


def _delete_version(client: MlflowClient, version: str) -> None:
    """Delete the registered version and the model files behind it."""
    found = client.get_model_version(RECOMMENDER, version)
    model_id = getattr(found, "model_id", None)
    client.delete_model_version(RECOMMENDER, version)
    if model_id:
        logged = client.get_logged_model(model_id)
        repository = get_artifact_repository(logged.artifact_location)
        repository.delete_artifacts()  # type: ignore[no-untyped-call]
        client.delete_logged_model(model_id)
