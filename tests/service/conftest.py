"""Fixtures of the service tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.conftest import ServedStore, copy_of


@pytest.fixture
def own_store(served_store: ServedStore, tmp_path: Path) -> ServedStore:
    """A copy of the served store this test alone writes to."""
    return copy_of(served_store, tmp_path, clock=served_store.clock)


@pytest.fixture
def own_client(own_store: ServedStore) -> Iterator[TestClient]:
    """The API over `own_store`."""
    with TestClient(create_app(own_store.settings)) as client:
        yield client
