"""Abandoned carts on real sessions (otto-sample), against counts checked by hand.

Read off the file by hand (carts never followed by an order of the same item): sessions
0, 1, 2, 3, 4, 5 and 9 leave items in the cart: 10, 8, 1, 17, 3, 1 and 1 distinct items
(41 lines). The data ends 2022-08-28 21:59:57 UTC; the sessions' last cart changes lie
24.9, 481.3, 9.9, 170.6, 61.0, 382.3 and 672.0 hours before the end.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine

from features import columns as c
from features.cart import cart_summary
from features.sources.otto import read_otto
from service.decisioning.triggers import due
from service.intake import accept_events
from service.settings import Settings
from tests.conftest import add_customer

LEFT_IN_CART = {0: 10, 1: 8, 2: 1, 3: 17, 4: 3, 5: 1, 9: 1}
END = datetime(2022, 8, 28, 22, 0, tzinfo=UTC)


@pytest.fixture
def otto(shared_data: Path) -> pd.DataFrame:
    path = shared_data / "otto-sample" / "otto_train_fixture_20_sessions.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return read_otto(path)


def test_open_carts_match_the_hand_count(otto: pd.DataFrame) -> None:
    assert len(otto) == 862
    assert otto[c.TYPE].value_counts().to_dict() == {"view": 800, "add_to_cart": 52,
                                                     "purchase": 10}  # fmt: skip
    carts = cart_summary(otto.assign(**{c.PERSON_ID: otto[c.CUSTOMER_ID]}), as_of=pd.Timestamp(END))
    lines = {
        int(p.removeprefix("otto-")): len(ls)
        for p, ls in zip(carts[c.PERSON_ID], carts["lines"], strict=True)
    }
    assert lines == LEFT_IN_CART
    assert sum(lines.values()) == 41


def test_triggers_per_channel_window_and_age(otto: pd.DataFrame, engine: Engine) -> None:
    records = otto.assign(**{c.TS: otto[c.TS].map(lambda t: t.isoformat())}).to_dict("records")
    accept_events(engine, records)
    url = str(engine.url.render_as_string(hide_password=False))
    settings = Settings(database_url=url)
    for session in LEFT_IN_CART:
        add_customer(settings, f"otto-{session}", email=session != 2, push=True)

    def sessions(channel: str, **update: int) -> set[int]:
        found = due(engine, settings.model_copy(update=update), channel, END)
        return {int(str(p).removeprefix("otto-")) for p in found[c.PERSON_ID]}

    # Within a week: e-mail after 24 h (sessions 0 and 4), push after 1 h (also 2).
    assert sessions("email") == {0, 4}
    assert sessions("push") == {0, 2, 4}
    # With no age limit to speak of, every abandoned cart but session 2's (no e-mail
    # consent) is due an e-mail.
    assert sessions("email", cart_max_age_days=60) == {0, 1, 3, 4, 5, 9}
    assert sessions("push", cart_max_age_days=60) == set(LEFT_IN_CART)
