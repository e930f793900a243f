import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score, f1_score

from eegdm_utils.core.scoring import (balanced_accuracy, classification_metrics, cohen_kappa, confusion_matrix,
                                      weighted_f1)


def test_hand_made_confusion_matrix():
    # rows true, columns predicted
    cm = np.array([[8, 2, 0],
                   [1, 3, 1],
                   [0, 0, 5]])
    assert balanced_accuracy(cm) == pytest.approx((8 / 10 + 3 / 5 + 5 / 5) / 3)
    n, observed = 20, 16 / 20
    expected = (9 * 10 + 5 * 5 + 6 * 5) / n**2
    assert cohen_kappa(cm) == pytest.approx((observed - expected) / (1 - expected))
    f1 = [2 * (8 / 9) * (8 / 10) / (8 / 9 + 8 / 10), 2 * (3 / 5) * (3 / 5) / (6 / 5), 2 * (5 / 6) * 1 / (5 / 6 + 1)]
    assert weighted_f1(cm) == pytest.approx((f1[0] * 10 + f1[1] * 5 + f1[2] * 5) / 20)


def test_agrees_with_sklearn_and_counts_every_sample_once():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, 500)
    p = np.where(rng.random(500) < 0.6, y, rng.integers(0, 6, 500))
    m = classification_metrics(y, p, 6)
    assert m["n"] == 500 and np.sum(m["confusion"]) == 500
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p))
    assert m["kappa"] == pytest.approx(cohen_kappa_score(y, p))
    assert m["weighted_f1"] == pytest.approx(f1_score(y, p, average="weighted"))


def test_perfect_and_constant_predictions():
    y = np.array([0, 1, 2, 2, 1])
    assert classification_metrics(y, y, 3)["kappa"] == pytest.approx(1.0)
    constant = classification_metrics(y, np.zeros_like(y), 3)
    assert constant["kappa"] == pytest.approx(0.0) and constant["balanced_accuracy"] == pytest.approx(1 / 3)
    assert confusion_matrix([0, 1], [1, 1], 2).tolist() == [[0, 1], [0, 1]]


def test_merged_examples_give_the_per_line_confusion_matrix():
    from eegdm_utils.data.datasets import merge_lines

    rng = np.random.default_rng(1)
    windows = rng.integers(0, 30, 200)
    labels = (windows % 6 + (rng.random(200) < 0.2)) % 6  # lines of a window mostly agree
    window_pred = rng.integers(0, 6, 30)
    per_line = classification_metrics(labels, window_pred[windows], 6)
    w, y, count = merge_lines(windows, labels)
    assert count.sum() == 200 and len(w) < 200
    merged = classification_metrics(y, window_pred[w], 6, weights=count)
    assert merged["confusion"] == per_line["confusion"] and merged["kappa"] == per_line["kappa"]
