"""How good churn probabilities are: ranking, calibration, and what marketing can act on."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

EPS = 1e-6


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean probability| over equal-width probability bins,
    weighted by how many customers fall in each bin."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(which):
        inside = which == b
        total += inside.sum() * abs(y[inside].mean() - p[inside].mean())
    return float(total / len(p))


def top_decile_capture(y: np.ndarray, p: np.ndarray) -> float:
    """Share of all churners found among the 10% of customers scored riskiest."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    n = max(1, int(np.ceil(0.1 * len(p))))
    top = np.argsort(-p, kind="stable")[:n]
    return float(y[top].sum() / max(y.sum(), 1.0))


def churn_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, PR-AUC, log loss, Brier score, ECE and top-decile capture."""
    y = np.asarray(y, dtype=int)
    q = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return {
        "auc": float(roc_auc_score(y, q)),
        "pr_auc": float(average_precision_score(y, q)),
        "log_loss": float(log_loss(y, q, labels=[0, 1])),
        "brier": float(brier_score_loss(y, q)),
        "ece": expected_calibration_error(y, q),
        "top_decile_capture": top_decile_capture(y, q),
    }
