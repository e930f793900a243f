"""Baselines and controls that every classification result here stands beside.

- **Band-power pipeline** (no deep learning): log power of every channel in six bands
  (0.5-4, 4-8, 8-13, 13-30, 30-45, 45-75 Hz) over the event second, plus the channel's
  largest and smallest value there, standardised, then a class-balanced logistic regression.
- **Linear probe on a latent cache**: the log of the cached activity of the event's pool,
  every layer and channel kept (n x K x H features), with the same readout. It measures what
  the cache holds, independently of the LFT that is trained on it.
- The **untrained-backbone control** is the same cache + LFT recipe on an SSMDP that was never
  trained: :func:`eegdm_utils.train.pretraining.untrained_denoiser` gives the network that pretraining starts from.

The readout's one hyper-parameter, the inverse regularisation ``C``, is chosen on the
validation split (kappa); the test split is scored once. Examples are (window, label) pairs
weighted by the annotation lines they stand for (``datasets.merge_lines``), so that the
readout is fitted and scored per annotation line, as the networks are.

Shape letters: N windows, K channels, L samples, n layers, P pools, H width, F features.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.signal import periodogram
from threadpoolctl import threadpool_limits

from ..core.scoring import classification_metrics
from ..data.datasets import merge_lines
from ..train.finetuning import evaluate_lines

BANDS_HZ = ((0.5, 4.0), (4.0, 8.0), (8.0, 13.0), (13.0, 30.0), (30.0, 45.0), (45.0, 75.0))
C_GRID = (1.0e-3, 1.0e-2, 1.0e-1, 1.0, 10.0)
DIAGNOSTIC_C_GRID = (1.0e-2, 1.0e-1, 1.0)  # probes that only compare layers, pools and variants


def event_samples(window_samples: int, pad_seconds: float = 2.0, sfreq: float = 200.0) -> slice:
    """The samples of the annotated event in a window [event - pad, event + pad]."""
    pad = int(round(pad_seconds * sfreq))
    if window_samples <= 2 * pad:
        raise ValueError(f"a window of {window_samples} samples has no event between two pads of {pad}")
    return slice(pad, window_samples - pad)


def event_pool(window_samples: int, pool: int = 200, pad_seconds: float = 2.0, sfreq: float = 200.0) -> int:
    """Index of the pool that holds the start of the event (pool 2 of 5 for 1-s events)."""
    return event_samples(window_samples, pad_seconds, sfreq).start // pool


def band_power_features(windows: np.ndarray, sfreq: float = 200.0, span: slice | None = None) -> np.ndarray:
    """[N, K, L] (NaN = missing channel) -> [N, K * 8]: six log band powers, max and min per channel.

    Missing channels give NaN features (the readout imputes them)."""
    x = np.asarray(windows[..., span] if span is not None else windows, dtype=np.float64)
    freqs, p = periodogram(x, fs=sfreq, window="hann", axis=-1)  # [F], [N, K, F] density
    p = p * (freqs[1] - freqs[0])  # power per bin, so that a band's sum is its power
    bands = [np.log(p[..., (freqs >= lo) & (freqs < hi)].sum(-1) + 1e-12) for lo, hi in BANDS_HZ]  # [N, K] each
    feats = np.stack(bands + [x.max(-1), x.min(-1)], axis=-1)  # [N, K, 8]
    return feats.reshape(len(x), -1).astype(np.float32)


def cache_probe_features(latents: np.ndarray, pool: int, layers=None) -> np.ndarray:
    """[N, n, P, K, H] cached activity (NaN = missing) -> [N, n * K * H]: its log in one pool."""
    x = np.asarray(latents[:, :, pool] if layers is None else latents[:, list(layers), pool], dtype=np.float32)
    return log_activity(x).reshape(len(x), -1)


@dataclass
class ReadoutResult:
    C: float
    val: dict  # metrics on validation lines at the chosen C
    val_kappa_by_C: dict


class LinearReadout:
    """Standardise (missing values -> the training mean), then a class-balanced logistic
    regression whose C is chosen on validation kappa."""

    def __init__(self, n_classes: int, c_grid=C_GRID, max_iter: int = 1000):
        self.n_classes, self.c_grid, self.max_iter = n_classes, tuple(c_grid), max_iter

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        X = (X - self.mean) / self.scale
        return np.nan_to_num(X, nan=0.0)  # missing -> the training mean

    def fit(self, X: np.ndarray, y: np.ndarray, w: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
            w_val: np.ndarray) -> ReadoutResult:
        with warnings.catch_warnings():  # features of a channel missing everywhere: all NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            self.mean = np.nan_to_num(np.nanmean(X, axis=0))  # all-missing features: mean 0, scale 1
            scale = np.nan_to_num(np.nanstd(X, axis=0))
        self.scale = np.where(scale > 0, scale, 1.0)
        with threadpool_limits(1):  # small problems: BLAS threads cost far more than they give (10x here)
            return self._fit_path(self._standardise(X), y, w, self._standardise(X_val), y_val, w_val)

    def _fit_path(self, Z, y, w, Z_val, y_val, w_val) -> ReadoutResult:
        from sklearn.linear_model import LogisticRegression

        best, kappas = None, {}
        # one regularisation path from strong to weak, each fit starting where the last one ended
        model = LogisticRegression(class_weight="balanced", max_iter=self.max_iter, warm_start=True)
        for C in sorted(self.c_grid):
            model.set_params(C=C).fit(Z, y, sample_weight=w)
            m = classification_metrics(y_val, model.predict(Z_val), self.n_classes, weights=w_val)
            kappas[C] = round(m["kappa"], 4)
            if best is None or m["kappa"] > best[1]["kappa"]:
                best = (C, m, (model.coef_.copy(), model.intercept_.copy()))
        self.C, self.model = best[0], model
        self.model.coef_, self.model.intercept_ = best[2]  # the chosen C's solution
        return ReadoutResult(C=best[0], val=best[1], val_kappa_by_C=kappas)

    def predict(self, X: np.ndarray) -> np.ndarray:
        with threadpool_limits(1):
            return self.model.predict(self._standardise(X))

    def log_proba(self, X: np.ndarray) -> np.ndarray:
        """[N, C] log class probabilities (columns: every class of the training labels)."""
        with threadpool_limits(1), np.errstate(divide="ignore"):  # probability 0: log -inf
            return self.model.predict_log_proba(self._standardise(X))


def line_examples(lines: dict, indices: np.ndarray | None = None):
    """Annotation lines (optionally a subset) -> (window index, label, weight) examples."""
    keep = np.arange(len(lines["label"])) if indices is None else np.asarray(indices)
    return merge_lines(lines["window"][keep], lines["label"][keep].astype(np.int64))


def readout_run(features: dict, lines: dict, n_classes: int, train_indices=None, c_grid=C_GRID,
                keep_predictions: bool = False) -> dict:
    """Fit a :class:`LinearReadout` on window features of the train split (lines ``train_indices``),
    choose C on validation, score every test annotation line once.

    ``features``: split -> [N_split windows, F]; ``lines``: split -> the store's faithful lines.
    Returns the test metrics with the chosen C and the validation metrics (and, with
    ``keep_predictions``, the predicted class of every test line, ``line_predictions``, for the
    subject-level intervals of :mod:`eegdm_utils.eval.intervals`)."""
    w_tr, y_tr, n_tr = line_examples(lines["train"], train_indices)
    w_va, y_va, n_va = line_examples(lines["val"])
    readout = LinearReadout(n_classes, c_grid)
    fitted = readout.fit(features["train"][w_tr], y_tr, n_tr, features["val"][w_va], y_va, n_va)
    predicted = readout.predict(features["test"])
    test = evaluate_lines(predicted, lines["test"], n_classes)
    if keep_predictions:
        test["line_predictions"] = predicted[lines["test"]["window"]].tolist()
    return {**test, "C": fitted.C, "val_kappa": fitted.val["kappa"], "val_balanced_accuracy": fitted.val["balanced_accuracy"],
            "val_kappa_by_C": fitted.val_kappa_by_C}


def log_activity(x: np.ndarray) -> np.ndarray:
    """The log of cached activity (stds: positive), floored at 1e-6; NaN (missing) stays NaN."""
    return np.log(np.maximum(np.abs(x), 1e-6))
