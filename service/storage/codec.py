"""How values cross the database boundary: UTC times as integer microseconds, NULLs as None."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pandas as pd


def to_micros(times: pd.Series) -> pd.Series:
    """UTC datetimes (any resolution) -> integer microseconds since the epoch (NaT -> NA)."""
    values = times.dt.tz_convert("UTC").dt.as_unit("us").astype("int64")
    micros: pd.Series = values.astype("Int64").where(times.notna())
    return micros


def from_micros(values: pd.Series) -> pd.Series:
    """Integer microseconds since the epoch -> UTC datetimes."""
    return pd.to_datetime(values, unit="us", utc=True)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
#: One day in the stored unit (microseconds).
DAY = 86_400_000_000


def as_utc(at: datetime) -> datetime:
    """A time as given, or, given without an offset, read as UTC."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def micros(moment: datetime) -> int:
    """One aware datetime -> integer microseconds since the epoch, exactly."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} has no UTC offset")
    return (moment - EPOCH) // MICROSECOND


def moment(value: int) -> datetime:
    """Integer microseconds since the epoch -> a UTC datetime, exactly."""
    return EPOCH + value * MICROSECOND


def to_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as DB-API parameter rows, with every missing value as None."""
    prepared = frame.astype(object).where(frame.notna(), None)
    return cast(list[dict[str, Any]], prepared.to_dict("records"))
