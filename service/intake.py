"""Events arriving one batch at a time (the API, the tablet page): checked, stored once."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Engine

from features.schema import TABLES
from features.validation import validate
from service.people import link_identities
from service.storage.writer import Applied, write_batch


def accept_events(engine: Engine, records: list[dict[str, Any]]) -> Applied:
    """Validate `records` (raises `features.validation.BatchRejected`, nothing written),
    then store them and link their ids in one transaction. Re-sent events are skipped."""
    valid = validate(pd.DataFrame(records), TABLES["events"])
    with engine.begin() as conn:
        applied = write_batch(conn, TABLES["events"], valid)
        link_identities(conn, valid.frame)
    return applied
