"""Insert-only bulk load of events, the fast way each database offers.

- PostgreSQL: COPY the rows into a temporary table, then one
  `INSERT ... SELECT ... ON CONFLICT (event_id) DO NOTHING`, whose row count is exact.
- SQLite: one prepared `INSERT ... ON CONFLICT DO NOTHING` run over plain tuples
  (sqlite3 sums the row count of `executemany`).

Both run inside the caller's transaction, so a failure leaves nothing behind.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Table

from service.storage.engine import dialect_of


def insert_new(conn: Connection, table: Table, frame: pd.DataFrame, key: str) -> int:
    """Insert the rows of `frame` whose `key` is not stored yet; return how many were inserted."""
    if frame.empty:
        return 0
    if dialect_of(conn) == "postgresql":
        return _copy_postgres(conn, table, frame, key)
    return _executemany_sqlite(conn, table, frame, key)


def _executemany_sqlite(conn: Connection, table: Table, frame: pd.DataFrame, key: str) -> int:
    cols = ", ".join(f'"{col}"' for col in frame.columns)
    marks = ", ".join("?" for _ in frame.columns)
    sql = f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks}) ON CONFLICT ("{key}") DO NOTHING'
    prepared = frame.astype(object).where(frame.notna(), None)
    rows: list[tuple[Any, ...]] = list(prepared.itertuples(index=False, name=None))
    return int(conn.exec_driver_sql(sql, rows).rowcount)


def _copy_postgres(conn: Connection, table: Table, frame: pd.DataFrame, key: str) -> int:
    staging = f"{table.name}_incoming"
    cols = ", ".join(f'"{col}"' for col in frame.columns)
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        cursor.execute(
            f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" '
            f'(LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DROP'
        )
        cursor.execute(f'TRUNCATE "{staging}"')
        buffer = io.StringIO()
        # CSV keeps NULL (an empty unquoted field) apart from text; blanks were refused earlier.
        frame.to_csv(buffer, index=False, header=False)
        with cursor.copy(f'COPY "{staging}" ({cols}) FROM STDIN WITH (FORMAT csv)') as copy:
            copy.write(buffer.getvalue())
        cursor.execute(
            f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM "{staging}" '
            f'ON CONFLICT ("{key}") DO NOTHING'
        )
        return int(cursor.rowcount)
