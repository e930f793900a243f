"""Collecting seed runs into the report table, beside the published TUEV numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.files import read_json
from ..core.scoring import per_class_recall
from .intervals import in_points, subject_bootstrap

METRICS = ("kappa", "balanced_accuracy", "weighted_f1")

# The rows every classification report carries (notebook 40 trains the first three per seed,
# notebook 45 fits the readouts): the method, a supervised network, the untrained-backbone
# control, and the readouts that say what the inputs hold without any deep learning.
EEGDM = "EEGDM"
UNTRAINED = "EEGDM, untrained backbone"
EEGNET = "EEGNet"
BAND_POWER = "band powers + logistic regression"
PROBE = "linear probe, pretrained cache"
PROBE_UNTRAINED = "linear probe, untrained cache"
REQUIRED_METHODS = (EEGDM, UNTRAINED, EEGNET, BAND_POWER, PROBE, PROBE_UNTRAINED)
# notebook 90's rows (reported when run_dir/foundation/metrics.json exists): the released method, the
# paper's fusion head, amplitude-aware tokens, and the head without the pretrained embedding (control)
FOUNDATION_METHODS = ("EEGFoundation", "EEGFoundation, fusion head", "EEGFoundation, amplitude tokens",
                      "EEGFoundation head, no embedding")


def check_rows(results, label_fractions) -> None:
    """Raise naming every (method, label fraction) of :data:`REQUIRED_METHODS` that ``results`` lacks."""
    have = {(m, round(float(f), 6)) for m, f in zip(results["method"], results["label_fraction"])}
    missing = [f"{m} ({f:.0%} labels)" for m in REQUIRED_METHODS for f in label_fractions
               if (m, round(float(f), 6)) not in have]
    if missing:
        raise ValueError(f"the report lacks rows: {', '.join(missing)}; run notebook 40 (make sweep) and "
                         "notebook 45 with this run_dir")


def _row(result: dict, seed) -> dict:
    """One result of a metrics.json as a report row (the layout every ``collect_*`` returns)."""
    return {"seed": seed, "method": result["method"], "label_fraction": result["label_fraction"],
            **{m: result[m] for m in METRICS}, "val_kappa": result["val_kappa"], "epochs": result.get("epochs"),
            "confusion": np.array(result["confusion"]),
            "line_predictions": None if "line_predictions" not in result else np.array(result["line_predictions"])}


def collect_seed_results(lft_dir: str | Path, seeds: list[int] | None = None):
    """All rows of ``lft_dir/seed_*/metrics.json`` as a DataFrame (seed, method, fraction, metrics)."""
    import pandas as pd

    lft_dir = Path(lft_dir)
    folders = sorted(lft_dir.glob("seed_*"), key=lambda p: int(p.name.split("_")[1]))
    if seeds:
        folders = [f for f in folders if int(f.name.split("_")[1]) in seeds]
    rows = []
    for folder in folders:
        path = folder / "metrics.json"
        if not path.exists():
            continue
        result = read_json(path)
        for r in result["results"]:
            rows.append(_row(r, result["seed"]))
    if not rows:
        raise FileNotFoundError(f"{lft_dir}: no seed results (seed_*/metrics.json); run notebook 40 (make sweep) first")
    return pd.DataFrame(rows)


def summary_table(results):
    """mean +- population std (x100) of each metric per (method, label fraction)."""
    grouped = results.groupby(["method", "label_fraction"], sort=False)
    rows = []
    for (method, fraction), group in grouped:
        row = {"method": method, "labels": f"{fraction:.0%}", "seeds": len(group)}
        for m in METRICS:
            values = 100 * group[m].to_numpy()
            row[m] = f"{values.mean():.2f} ± {values.std(ddof=0):.2f}"
            row[f"{m}_mean"], row[f"{m}_std"] = values.mean(), values.std(ddof=0)
        rows.append(row)
    import pandas as pd

    return pd.DataFrame(rows)


def collect_control_results(run_dir: str | Path):
    """The readout rows of notebook 45 (``run_dir/controls/metrics.json``) in the layout of
    :func:`collect_seed_results`; readouts have no seed (one deterministic fit per label fraction)."""
    import pandas as pd

    path = Path(run_dir) / "controls" / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no baseline and control readouts; run notebook 45 with this run_dir first")
    rows = [_row(r, None) for r in read_json(path)["results"]]  # no epochs: a readout is one fit
    return pd.DataFrame(rows)


def collect_foundation_results(run_dir: str | Path):
    """Notebook 90's rows (``run_dir/foundation/metrics.json``) in the layout of
    :func:`collect_seed_results`, or None when notebook 90 has not run in ``run_dir``."""
    import pandas as pd

    path = Path(run_dir) / "foundation" / "metrics.json"
    if not path.exists():
        return None
    rows = [_row(r, r["seed"]) for r in read_json(path)["results"]]
    return pd.DataFrame(rows)


def recall_table(results, class_names):
    """Mean per-class test recall over seeds, per (method, label fraction)."""
    import pandas as pd


    rows = []
    for (method, fraction), group in results.groupby(["method", "label_fraction"], sort=False):
        recall = np.nanmean(np.stack([per_class_recall(c) for c in group["confusion"]]), axis=0)
        rows.append({"method": method, "labels": f"{fraction:.0%}", **dict(zip(class_names, recall))})
    return pd.DataFrame(rows)


# the comparisons the claims make: (method, other, metric); the first method is above the other
COMPARISONS = (*((EEGDM, other, m) for other in (BAND_POWER, UNTRAINED, EEGNET)
                  for m in ("kappa", "balanced_accuracy")),
               (EEGDM, PROBE, "kappa"), (PROBE, PROBE_UNTRAINED, "kappa"),
               (FOUNDATION_METHODS[0], FOUNDATION_METHODS[3], "kappa"))  # EEGFoundation against its head alone
NO_INTERVAL = "not assessed (no line predictions)"


def recorded_test_lines(run_dir: str | Path) -> dict | None:
    """The test lines' labels and subjects that notebook 45 records (``run_dir/controls/metrics.json``),
    or None for a run made before it recorded them."""
    return read_json(Path(run_dir) / "controls" / "metrics.json").get("test_lines")


def claim_intervals(results, test_lines: dict | None, n_classes: int, label_fractions, n_boot: int = 2000,
                    level: float = 0.95) -> dict:
    """The subject-level paired bootstrap (:func:`eegdm_utils.eval.intervals.subject_bootstrap`, ×100) of
    each comparison of :data:`COMPARISONS` and label fraction whose rows carry ``line_predictions``:
    {(method, other, metric, fraction): {"difference", "low", "high", ...}}. ``test_lines``:
    ``{"label": [N], "subject": [N]}``, the test lines in the order the predictions follow (None: no
    intervals)."""

    if test_lines is None:
        return {}
    labels, subjects = np.asarray(test_lines["label"]), np.asarray(test_lines["subject"])

    def predictions(method, fraction):
        rows = results[(results.method == method) & (results.label_fraction == fraction)]
        if rows.empty or any(p is None for p in rows["line_predictions"]):
            return None
        for p in rows["line_predictions"]:
            if len(p) != len(labels):
                raise ValueError(f"{method} ({fraction:.0%} labels) predicts {len(p)} test lines, the store "
                                 f"has {len(labels)}: the runs are not of one store")
        return np.stack(list(rows["line_predictions"]))  # [seeds, N]

    out = {}
    for fraction in label_fractions:
        for method, other, metric in COMPARISONS:
            a, b = predictions(method, fraction), predictions(other, fraction)
            if a is None or b is None:
                continue
            out[(method, other, metric, fraction)] = in_points(subject_bootstrap(labels, a, b, subjects, n_classes,
                                                                                 metric=metric, n_boot=n_boot, level=level))
    return out


def target_checks(table, recalls, label_fractions, intervals: dict | None = None, min_recall: float = 0.2,
                  min_seeds: int = 3):
    """The claims a report must back, each decided from the numbers. A comparison (EEGDM above the
    band-power pipeline, the untrained-backbone control and EEGNet on kappa and balanced accuracy;
    the pretrained cache's probe above the untrained one's; when notebook 90 has run, EEGFoundation
    above its head without the embedding) holds only when the subject-level
    interval of the difference (``intervals``, from :func:`claim_intervals`) lies above zero and the
    difference is larger than the larger seed std of the two rows; "the LFT not below the linear probe
    on its cache" holds unless the interval lies below zero. Every class recalled at least
    ``min_recall`` (mean over seeds). With fewer than ``min_seeds`` seeds a seed std means nothing:
    "not assessed"; without line predictions there is no interval: "not assessed" too. Readouts are
    one deterministic fit (std 0)."""
    import pandas as pd

    intervals = intervals or {}

    def row(method, fraction):
        return table[(table.method == method) & (table.labels == f"{fraction:.0%}")].iloc[0]

    checks = []

    def claim(fraction, text, measured, holds, seeds, interval=None, difference=np.nan):
        if seeds < min_seeds:
            holds = "not assessed"
        checks.append({"labels": f"{fraction:.0%}", "claim": text, "measured": measured,
                       "interval": "" if interval is None else f"[{interval['low']:+.2f}, {interval['high']:+.2f}]",
                       "holds": holds, "difference": difference,
                       "low": np.nan if interval is None else interval["low"],
                       "high": np.nan if interval is None else interval["high"]})

    def compared(fraction, method, other, metric, text, seeds, at_least=False):
        ours, theirs = row(method, fraction), row(other, fraction)
        margin = ours[f"{metric}_mean"] - theirs[f"{metric}_mean"]
        spread = max(ours[f"{metric}_std"], theirs[f"{metric}_std"])
        interval = intervals.get((method, other, metric, fraction))
        if interval is None:
            holds = NO_INTERVAL
        elif at_least:
            holds = bool(interval["high"] >= 0)
        else:
            holds = bool(interval["low"] > 0 and margin > spread)
        claim(fraction, text, f"{margin:+.2f} (seed std {spread:.2f})", holds, seeds, interval, margin)

    for fraction in label_fractions:
        seeds = int(row(EEGDM, fraction)["seeds"])
        for other in (BAND_POWER, UNTRAINED, EEGNET):
            for m in ("kappa", "balanced_accuracy"):
                compared(fraction, EEGDM, other, m, f"EEGDM above {other} ({m.replace('_', ' ')})", seeds)
        rec = recalls[(recalls.method == EEGDM) & (recalls.labels == f"{fraction:.0%}")].iloc[0]
        worst = min((rec[c], c) for c in recalls.columns[2:])
        claim(fraction, f"EEGDM recalls every class >= {min_recall}", f"lowest: {worst[1]} {worst[0]:.2f}",
              bool(worst[0] >= min_recall), seeds)
        compared(fraction, EEGDM, PROBE, "kappa", "LFT not below the linear probe on its cache (kappa)", seeds,
                 at_least=True)
        compared(fraction, PROBE, PROBE_UNTRAINED, "kappa",
                 "pretrained cache's probe above the untrained cache's (kappa; one fit each)", min_seeds)
        foundation, alone = FOUNDATION_METHODS[0], FOUNDATION_METHODS[3]
        have = set(zip(table.method, table.labels))
        if (foundation, f"{fraction:.0%}") in have and (alone, f"{fraction:.0%}") in have:  # notebook 90 ran
            compared(fraction, foundation, alone, "kappa", "EEGFoundation above its head without the embedding (kappa)",
                     int(row(foundation, fraction)["seeds"]))
    return pd.DataFrame(checks)
