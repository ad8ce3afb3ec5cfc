"""How interaction weights become the confidence matrices implicit's models expect."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import numpy as np
from scipy.sparse import csr_matrix
from threadpoolctl import ThreadpoolController


def confidence(weights: csr_matrix, alpha: float) -> csr_matrix:
    """alpha * log1p(weight) on the stored entries: implicit reads c_ui = 1 + this value."""
    out = weights.tocsr(copy=True).astype(np.float32)
    out.data = (alpha * np.log1p(out.data)).astype(np.float32)
    return out


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """implicit runs its own threads; BLAS must not add a pool of its own under it."""
    with _threadpools().limit(limits=1, user_api="blas"):
        yield


@cache
def _threadpools() -> ThreadpoolController:
    """The process's thread pools, found once (finding them costs ~4 ms, paid per fold-in
    before)."""
    return ThreadpoolController()
