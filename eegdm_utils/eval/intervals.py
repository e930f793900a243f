"""Sampling error of a difference between two methods: a subject-level paired bootstrap.

The test set of a small EEG corpus is a handful of subjects, and lines of one subject are not
independent (one montage, one background, one annotator's habits). The spread a new draw of
test subjects would show is estimated by resampling **subjects** with replacement (every line
of a drawn subject comes along, as often as the subject is drawn) and recomputing both methods'
metric on the same resampled lines: a paired bootstrap, so what the two methods share cancels.
With several seeds per method, the metric of a resample is the mean over seeds, as in the tables.

The percentile interval of the difference is reported beside the seed std; a claim "A above B"
holds only when the whole interval lies above zero.

Shape letters: S seeds, N test lines, K classes, R bootstrap resamples.
"""

from __future__ import annotations

import numpy as np

from ..data.recordings import subject_of


def cohen_kappa(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, weights: np.ndarray | None = None) -> float:
    """Cohen's kappa of labels ``y_true`` and predictions ``y_pred`` [N] (integers below ``n_classes``),
    each line counted ``weights[i]`` times (default once). 0 when chance agreement is total."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    w = np.ones(len(y_true)) if weights is None else np.asarray(weights, dtype=float)
    confusion = np.bincount(y_true * n_classes + y_pred, weights=w, minlength=n_classes * n_classes)
    return _kappa(confusion.reshape(1, n_classes, n_classes))[0]


def _kappa(confusion: np.ndarray) -> np.ndarray:
    """Kappa of each confusion matrix [R, K, K] (rows true, columns predicted)."""
    total = confusion.sum(axis=(1, 2))
    observed = np.trace(confusion, axis1=1, axis2=2) / total
    expected = (confusion.sum(axis=2) * confusion.sum(axis=1)).sum(axis=1) / total ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = (observed - expected) / (1.0 - expected)
    return np.where(expected >= 1.0, 0.0, kappa)


def _balanced_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Mean recall over the classes present, of each confusion matrix [R, K, K]."""
    support = confusion.sum(axis=2)  # [R, K]
    recall = np.divide(np.diagonal(confusion, axis1=1, axis2=2), support, out=np.zeros(support.shape),
                       where=support > 0)
    return recall.sum(axis=1) / np.maximum((support > 0).sum(axis=1), 1)


METRICS = {"kappa": _kappa, "balanced_accuracy": _balanced_accuracy}


def _resampled_confusions(y_true: np.ndarray, y_pred: np.ndarray, counts: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrices [R, K, K] of predictions [N] with line ``i`` counted ``counts[:, i]`` times."""
    cell = y_true * n_classes + y_pred  # [N]
    one_hot = np.zeros((len(cell), n_classes * n_classes))
    one_hot[np.arange(len(cell)), cell] = 1.0
    return (counts @ one_hot).reshape(len(counts), n_classes, n_classes)


def _subject_counts(subjects, n_lines: int, n_boot: int, seed: int) -> tuple[np.ndarray, int]:
    """How often each test line counts in the test set itself (row 0: once) and in each of ``n_boot``
    resamples of the subjects with replacement [1 + R, N], and the number of subjects."""
    subjects = np.asarray(subjects)
    if len(subjects) != n_lines:
        raise ValueError(f"subjects has {len(subjects)} entries, y_true {n_lines}")
    names, subject_of_line = np.unique(subjects, return_inverse=True)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(names), size=(n_boot, len(names)))  # [R, subjects drawn]
    times = np.stack([np.bincount(row, minlength=len(names)) for row in drawn])  # [R, subjects]: times drawn
    return np.vstack([np.ones(len(names)), times])[:, subject_of_line], len(names)


def _seed_mean_scores(y_true: np.ndarray, pred: np.ndarray, counts: np.ndarray, n_classes: int, metric: str,
                      name: str) -> np.ndarray:
    """The metric of predictions [S, N] on every row of ``counts`` [1 + R, N], averaged over seeds."""
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r}: expected one of {sorted(METRICS)}")
    if pred.shape[1] != len(y_true):
        raise ValueError(f"{name} has {pred.shape[1]} lines per seed, y_true {len(y_true)}")
    return np.mean([METRICS[metric](_resampled_confusions(y_true, p, counts, n_classes)) for p in pred], axis=0)


def subject_bootstrap(y_true, pred_a, pred_b, subjects, n_classes: int, metric: str = "kappa", n_boot: int = 2000,
                      seed: int = 0, level: float = 0.95) -> dict:
    """The difference ``metric(A) - metric(B)`` on the test lines and its percentile interval over
    ``n_boot`` resamples of the test subjects (paired: both methods scored on the same resample).

    ``y_true`` [N] labels; ``pred_a`` / ``pred_b`` [N] or [S, N] predictions (one row per seed,
    averaged over seeds per resample; the two may have different numbers of seeds); ``subjects``
    [N] the subject of each line. Returns ``difference`` (on the test set as it is), ``low``,
    ``high``, ``level``, ``n_subjects`` and ``n_boot``."""
    y_true = np.asarray(y_true)
    pred_a, pred_b = np.atleast_2d(pred_a), np.atleast_2d(pred_b)
    counts, n_subjects = _subject_counts(subjects, len(y_true), n_boot, seed)
    difference = (_seed_mean_scores(y_true, pred_a, counts, n_classes, metric, "pred_a")
                  - _seed_mean_scores(y_true, pred_b, counts, n_classes, metric, "pred_b"))  # [1 + R]
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(difference[1:], [tail, 100 - tail])
    return {"difference": float(difference[0]), "low": float(low), "high": float(high), "level": level,
            "n_subjects": n_subjects, "n_boot": int(n_boot)}


def subject_interval(y_true, pred, subjects, n_classes: int, metric: str = "kappa", n_boot: int = 2000,
                     seed: int = 0, level: float = 0.95) -> dict:
    """One method's ``metric`` on the test lines (mean over the seeds of ``pred`` [N] or [S, N]) and its
    percentile interval over ``n_boot`` resamples of the test subjects: ``value``, ``low``, ``high``,
    ``level``, ``n_subjects``, ``n_boot``."""
    y_true = np.asarray(y_true)
    counts, n_subjects = _subject_counts(subjects, len(y_true), n_boot, seed)
    scores = _seed_mean_scores(y_true, np.atleast_2d(pred), counts, n_classes, metric, "pred")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(scores[1:], [tail, 100 - tail])
    return {"value": float(scores[0]), "low": float(low), "high": float(high), "level": level,
            "n_subjects": n_subjects, "n_boot": int(n_boot)}


def in_points(result: dict) -> dict:
    """A result of :func:`subject_bootstrap` with its difference and interval x100 (kappa points, the
    unit of every table)."""
    return {**result, **{k: 100 * result[k] for k in ("difference", "low", "high")}}


def line_subjects(store, split: str = "test") -> np.ndarray:
    """The subject of each faithful annotation line of ``split`` [N], in the store's line order: the
    subject of the recording its window was cut from (:func:`eegdm_utils.data.recordings.subject_of`,
    the rule the store's subject-wise splits use)."""
    files = store.meta["files"]
    window_file = store.array(split, "window_file")
    lines = store.faithful(split)["window"]
    return np.array([subject_of(files[i]) for i in window_file[lines]])
