"""Scoring real EEG (notebook 95): the metrics of small real tasks (balanced accuracy, AUROC,
kappa, collapse to one class), readouts and class weightings chosen on validation, the routes
the notebook compares, and the table over folds.

Shape letters: N windows, C classes."""

from __future__ import annotations

import numpy as np

from ..core.runtime import seed_everything
from ..core.scoring import classification_metrics
from .controls import C_GRID, LinearReadout, line_examples
from .intervals import in_points, subject_bootstrap


def task_metrics(y_true: np.ndarray, scores: np.ndarray, n_classes: int) -> dict:
    """Kappa, balanced accuracy, weighted F1 and AUROC (two classes: of the second class's logit minus
    the first's; more: macro one-vs-rest on their softmax; NaN when the test fold holds one class)
    from class logits or log-probabilities [N, C];
    ``predicted_classes``: how many classes the model predicts at all (1 = collapsed)."""
    from sklearn.metrics import roc_auc_score

    y_true = np.asarray(y_true)
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), neginf=-1.0e9, posinf=1.0e9)  # log(0) = -inf
    pred = scores.argmax(axis=1)
    m = classification_metrics(y_true, pred, n_classes)
    present = np.unique(y_true)
    if len(present) < 2:
        auroc = float("nan")
    elif n_classes == 2:
        auroc = float(roc_auc_score(y_true, scores[:, 1] - scores[:, 0]))
    else:
        prob = np.exp(scores - scores.max(axis=1, keepdims=True))
        prob /= prob.sum(axis=1, keepdims=True)
        auroc = float(roc_auc_score(y_true, prob[:, present], multi_class="ovr", labels=present)) \
            if len(present) == n_classes else float("nan")
    return {**m, "auroc": auroc, "predicted_classes": int(len(np.unique(pred)))}


# ---------------------------------------------------------------- CHB-MIT


# ---------------------------------------------------------------- folds over one store


# ---------------------------------------------------------------- scoring the routes of one fold

def readout_scores(features: dict, view, n_classes: int, c_grid=None) -> tuple[np.ndarray, dict]:
    """A class-balanced logistic readout (notebook 45's) fitted on the fold's training windows,
    C chosen on its validation windows: ([N_test, C] log-probabilities, {C, val_kappa})."""

    w_tr, y_tr, n_tr = line_examples(view.faithful("train"))
    w_va, y_va, n_va = line_examples(view.faithful("val"))
    readout = LinearReadout(n_classes, c_grid or C_GRID)
    fitted = readout.fit(features["train"][w_tr], y_tr, n_tr, features["val"][w_va], y_va, n_va)
    scores = np.full((len(features["test"]), n_classes), -1.0e9)  # classes absent from training
    scores[:, readout.model.classes_] = readout.log_proba(features["test"])
    return scores, {"class_weight": "balanced", "C": fitted.C, "val_kappa": fitted.val["kappa"]}


def best_class_weighting(fit, train_labels: np.ndarray, class_weights, n_classes: int,
                         seed: int | None = None) -> tuple[np.ndarray, dict]:
    """Fit once per cross-entropy weighting in ``class_weights`` ("none", "balanced") and keep the fit
    with the better validation kappa. ``fit(weight)`` returns (validation kappa, test scores). With the
    classes equally frequent in training, "balanced" weights are all 1: that fit is the unweighted one
    and is not made twice. Given ``seed``, every fit starts from the random state of that seed, so its
    initial weights do not depend on what ran before it. Returns (test scores, {"class_weight", "val_kappa"})."""
    counts = np.bincount(train_labels, minlength=n_classes)
    same = "none" in class_weights and len(set(counts[counts > 0].tolist())) == 1

    def seeded(w):
        if seed is not None:
            seed_everything(seed)
        return fit(w)

    fits = {w: seeded(w) for w in class_weights if not (w == "balanced" and same)}
    chosen = max(fits, key=lambda w: fits[w][0])
    return fits[chosen][1], {"class_weight": chosen, "val_kappa": fits[chosen][0]}


# notebook 95's routes, each with its row name in the tables and figures
ROUTES = {
    "transfer": "EEGDM, transfer (simulated-corpus backbone)",
    "self-supervised": "EEGDM, self-supervised on the fold's training subjects",
    "untrained": "EEGDM, untrained backbone (control)",
    "probe": "linear probe, transfer backbone's latents",
    "band_power": "band powers + logistic regression",
    "eegnet": "EEGNet (supervised, raw windows)",
    "foundation": "EEGFoundation (min-max tokens, released head)",
}


def fold_table(results):
    """Mean ± population std ×100 over folds per method (balanced accuracy, AUROC, kappa), the folds in
    which a model predicted one class for every test window, and the class weightings chosen."""
    def spread(v):
        return f"{100 * v.mean():.1f} ± {100 * v.std(ddof=0):.1f}"
    return results.groupby("method", sort=False).agg(
        bacc=("balanced_accuracy", spread), auroc=("auroc", spread), kappa=("kappa", spread),
        collapsed=("predicted_classes", lambda v: f"{int((v == 1).sum())}/{len(v)}"),
        class_weight=("class_weight", lambda v: ", ".join(f"{k} {n}" for k, n in v.value_counts().items())))


# the comparisons notebook 95's claims are made of: (route, route it must beat)
REAL_CLAIMS = (("transfer", "band_power"), ("transfer", "untrained"), ("self-supervised", "untrained"),
               ("self-supervised", "band_power"), ("foundation", "band_power"))


def route_claims(rows: list[dict], n_classes: int, metric: str = "balanced_accuracy", min_subjects: int = 3,
                 n_boot: int = 2000) -> list[dict]:
    """Each comparison of :data:`REAL_CLAIMS` whose two routes ran, on the test windows of every fold pooled
    (subject-wise folds test each subject once): the difference of ``metric`` (x100) and its 95% interval
    from the paired bootstrap over the test subjects; ``holds`` when the whole interval is above zero. Rows
    without line predictions (a run made before notebook 95 kept them) or with fewer than
    ``min_subjects`` test subjects (one patient split in time) give ``holds`` "not assessed"."""
    by_route: dict[str, list[dict]] = {}
    for r in rows:
        by_route.setdefault(r["route"], []).append(r)
    out = []
    for route, other in REAL_CLAIMS:
        if route not in by_route or other not in by_route:
            continue
        text = f"{ROUTES[route].split(' (')[0]} above {ROUTES[other].split(' (')[0]} ({metric.replace('_', ' ')})"
        pooled = {}
        for name in (route, other):
            folds = sorted(by_route[name], key=lambda r: r["fold"])
            if any("line_predictions" not in r for r in folds):
                break
            pooled[name] = {k: np.concatenate([np.asarray(r[f"line_{k}"]) for r in folds])
                            for k in ("predictions", "labels", "subjects")}
        if len(pooled) < 2 or len(np.unique(pooled[route]["subjects"])) < min_subjects:
            out.append({"claim": text, "difference": None, "low": None, "high": None, "holds": "not assessed"})
            continue
        a, b = pooled[route], pooled[other]
        if not (np.array_equal(a["labels"], b["labels"]) and np.array_equal(a["subjects"], b["subjects"])):
            raise ValueError(f"{route} and {other} were tested on different windows: not comparable")
        r = in_points(subject_bootstrap(a["labels"], a["predictions"], b["predictions"], a["subjects"], n_classes,
                                        metric=metric, n_boot=n_boot))
        out.append({"claim": text, **{k: r[k] for k in ("difference", "low", "high", "n_subjects")},
                    "holds": bool(r["low"] > 0)})
    return out


def fold_route_row(fold: int, route: str, info: dict, metrics: dict, seconds: float, labels, window_scores,
                   subjects) -> tuple[dict, list[dict]]:
    """One fold's result row of a route (its metrics, the choices made on validation, and each test
    line's prediction, label and subject for :func:`route_claims`) and its accuracy per test subject."""
    predicted = np.asarray(window_scores).argmax(1)
    labels, subjects = np.asarray(labels), np.asarray(subjects)
    row = {"fold": fold, "route": route, "method": ROUTES[route], **info, **metrics, "seconds": round(seconds, 1),
           "line_predictions": predicted.tolist(), "line_labels": labels.tolist(), "line_subjects": subjects.tolist()}
    per_subject = [{"fold": fold, "route": route, "method": ROUTES[route], "subject": subject,
                    "n": int((subjects == subject).sum()),
                    "accuracy": float((predicted[subjects == subject] == labels[subjects == subject]).mean())}
                   for subject in np.unique(subjects)]
    return row, per_subject


def claim_lines(claims: list[dict]) -> list[str]:
    """The claims of :func:`route_claims` as lines of text: difference [interval], holds."""
    return [f"{c['claim']}: " + ("" if c["difference"] is None else f"{c['difference']:+.1f} [{c['low']:+.1f}, "
                                 f"{c['high']:+.1f}] ") + f"holds: {c['holds']}" for c in claims]
