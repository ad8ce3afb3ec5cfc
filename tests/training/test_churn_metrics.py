"""Churn metrics on hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest

from training.churn_metrics import churn_metrics, expected_calibration_error, top_decile_capture


def test_expected_calibration_error_by_hand() -> None:
    # Bin [0.1, 0.2): p = 0.1 twice, one churner -> |0.5 - 0.1| = 0.4, weight 2/4.
    # Bin [0.9, 1.0]: p = 0.9 twice, both churn -> |1.0 - 0.9| = 0.1, weight 2/4.
    y = np.array([1, 0, 1, 1])
    p = np.array([0.1, 0.1, 0.9, 0.9])
    assert expected_calibration_error(y, p) == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    assert expected_calibration_error(np.array([0, 1]), np.array([0.0, 1.0])) == 0.0


def test_top_decile_capture_by_hand() -> None:
    # 20 customers, 4 churners; the riskiest 2 (10%) hold 2 of them: capture 0.5.
    y = np.zeros(20)
    y[[0, 1, 10, 11]] = 1
    p = np.linspace(0.9, 0.1, 20)
    assert top_decile_capture(y, p) == pytest.approx(0.5)


def test_perfect_and_useless_scores() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    perfect = churn_metrics(y, y.astype(float))
    assert perfect["auc"] == 1.0 and perfect["pr_auc"] == 1.0 and perfect["ece"] < 1e-5
    flat = churn_metrics(y, np.full(len(y), 0.5))
    assert flat["auc"] == 0.5
    assert flat["brier"] == pytest.approx(0.25)
    assert flat["log_loss"] == pytest.approx(np.log(2))
