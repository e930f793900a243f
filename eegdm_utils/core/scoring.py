"""Classification metrics of the TUEV benchmark, from a confusion matrix so that every test
sample counts exactly once: balanced accuracy, Cohen's kappa, weighted F1, per-class recall.

Shape letters: C classes.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true, y_pred, n_classes: int, weights=None) -> np.ndarray:
    """[C, C] counts, rows = true class, columns = predicted class. ``weights``: how many
    samples each entry stands for (whole numbers), default 1."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ")
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    counts = np.bincount(y_true * n_classes + y_pred, weights=w, minlength=n_classes * n_classes)
    return np.rint(counts).astype(np.int64).reshape(n_classes, n_classes)


def balanced_accuracy(cm: np.ndarray) -> float:
    """Mean recall over the classes present in the truth."""
    support = cm.sum(axis=1)
    present = support > 0
    return float((np.diag(cm)[present] / support[present]).mean())


def cohen_kappa(cm: np.ndarray) -> float:
    n = cm.sum()
    observed = np.trace(cm) / n
    expected = (cm.sum(axis=0) * cm.sum(axis=1)).sum() / n**2
    return float((observed - expected) / (1 - expected)) if expected < 1 else 0.0


def weighted_f1(cm: np.ndarray) -> float:
    tp = np.diag(cm).astype(float)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=precision + recall > 0)
    return float((f1 * support).sum() / support.sum())


def classification_metrics(y_true, y_pred, n_classes: int, weights=None) -> dict:
    cm = confusion_matrix(y_true, y_pred, n_classes, weights)
    return {"balanced_accuracy": balanced_accuracy(cm), "kappa": cohen_kappa(cm), "weighted_f1": weighted_f1(cm),
            "n": int(cm.sum()), "confusion": cm.tolist()}


def per_class_recall(confusion) -> np.ndarray:
    """[C, C] confusion (rows: truth) -> recall per class (NaN where the class has no lines)."""
    cm = np.asarray(confusion, dtype=float)
    support = cm.sum(axis=1)
    return np.divide(np.diag(cm), support, out=np.full(len(cm), np.nan), where=support > 0)
