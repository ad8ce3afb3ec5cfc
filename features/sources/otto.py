"""Adapter for OTTO session files (JSON Lines, one web shop session per line).

Each line is `{"session": int, "events": [{"aid": int, "ts": unix_ms, "type": ...}]}`;
clicks -> `view`, carts -> `add_to_cart`, orders -> `purchase`, all in the `web`
channel. The session is the customer (`otto-<session>`): OTTO's sessions are a user's
whole journey in the data window.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from features import columns as c
from features.sources.files import SourceError

TYPES = {
    "clicks": c.EventType.VIEW.value,
    "carts": c.EventType.ADD_TO_CART.value,
    "orders": c.EventType.PURCHASE.value,
}


def read_otto(path: Path) -> pd.DataFrame:
    """The file's events in the Omni event schema; raises `SourceError` naming the line
    and field of anything it cannot read."""
    rows = []
    with path.open() as lines:
        for number, line in enumerate(lines, start=1):
            try:
                session = json.loads(line)
                sid = int(session["session"])
                for i, event in enumerate(session["events"]):
                    rows.append(
                        {
                            c.EVENT_ID: f"otto-{sid}-{i}",
                            c.TS: int(event["ts"]),
                            c.CUSTOMER_ID: f"otto-{sid}",
                            c.CHANNEL: c.Channel.WEB.value,
                            c.TYPE: TYPES[event["type"]],
                            c.ITEM_ID: str(event["aid"]),
                            c.QUANTITY: 1,
                        }
                    )
            except (ValueError, KeyError, TypeError) as exc:
                raise SourceError(f"{path}, line {number}: cannot read {exc}") from exc
    frame = pd.DataFrame(rows)
    frame[c.TS] = pd.to_datetime(frame[c.TS], unit="ms", utc=True)
    return frame
