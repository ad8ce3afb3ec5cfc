"""Batch answers in the store: written whole per model version, read one row per request.

The batch layer (`training.answers`) scores every person once and writes the set in one
transaction; a request reads its person's row with the set's times (`set_and_churn_row`), and
uses it only while nothing of the person arrived after the set was made.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, delete, insert, select

from features import columns as c
from service.storage.engine import fetch_all
from service.storage.tables import answer_sets, churn_answers

CHURN = "churn"


@dataclass(frozen=True)
class AnswerSet:
    kind: str
    model_version: str
    #: The moment the answers are for, and when they were written (microseconds, UTC).
    as_of: int
    made_at: int
    rows: int


@dataclass(frozen=True)
class ChurnRow:
    probability: float | None
    band: str
    drivers: list[str]


def answer_set(conn: Connection, kind: str, version: str) -> AnswerSet | None:
    """The set of `kind` answers written for `version`, if any."""
    rows = fetch_all(conn, _SET, {"kind": kind, "version": version})
    return AnswerSet(*rows[0]) if rows else None


_SET = select(answer_sets).where(
    answer_sets.c[c.KIND] == bindparam("kind"), answer_sets.c.model_version == bindparam("version")
)


def write_churn(
    conn: Connection,
    version: str,
    answers: Iterable[tuple[str, float | None, str, list[str]]],
    *,
    as_of: int,
    made_at: int,
) -> int:
    """Replace the churn answers of `version` with (person_id, probability, band, drivers)
    rows, in the caller's transaction; other versions' answers are dropped. Returns rows."""
    conn.execute(delete(churn_answers))
    conn.execute(delete(answer_sets).where(answer_sets.c[c.KIND] == CHURN))
    rows = [
        {c.PERSON_ID: person, "model_version": version, "probability": p, "band": band,
         "drivers": json.dumps(drivers)}
        for person, p, band, drivers in answers
    ]  # fmt: skip
    if rows:
        conn.execute(insert(churn_answers), rows)
    conn.execute(
        insert(answer_sets).values(
            kind=CHURN, model_version=version, as_of=as_of, made_at=made_at, rows=len(rows)
        )
    )
    return len(rows)


def set_and_churn_row(
    conn: Connection, version: str, person_id: str
) -> tuple[AnswerSet | None, ChurnRow | None]:
    """`version`'s set of churn answers and the person's row in it, in one read (a
    request's: one round trip, not two)."""
    rows = fetch_all(conn, _SET_AND_ROW, {"version": version, "person": person_id})
    if not rows:
        return None, None
    row = rows[0]
    stored = AnswerSet(*row[:5])
    if row[6] is None:  # no row of theirs (the band is never null)
        return stored, None
    return stored, ChurnRow(None if row[5] is None else float(row[5]), str(row[6]),
                            json.loads(row[7]))  # fmt: skip


_SET_AND_ROW = (
    select(answer_sets, churn_answers.c.probability, churn_answers.c.band,
           churn_answers.c.drivers)
    .select_from(
        answer_sets.outerjoin(
            churn_answers,
            (churn_answers.c[c.PERSON_ID] == bindparam("person"))
            & (churn_answers.c.model_version == answer_sets.c.model_version),
        )
    )
    .where(answer_sets.c[c.KIND] == CHURN, answer_sets.c.model_version == bindparam("version"))
)  # fmt: skip


def churn_rows(conn: Connection, version: str) -> dict[str, ChurnRow]:
    """Every person's churn answer in `version`'s set, by person id (a batch's read)."""
    t = churn_answers.c
    rows = conn.execute(
        select(t[c.PERSON_ID], t.probability, t.band, t.drivers).where(t.model_version == version)
    ).all()
    return {
        str(p): ChurnRow(None if prob is None else float(prob), str(band), json.loads(drivers))
        for p, prob, band, drivers in rows
    }


def forget(conn: Connection, person_id: str) -> None:
    """Delete the person's answers (erasure), in the caller's transaction."""
    conn.execute(delete(churn_answers).where(churn_answers.c[c.PERSON_ID] == person_id))
