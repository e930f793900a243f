"""Collecting seed runs into the report table, beside the published TUEV numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .runtime import read_json

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

# Puah et al. 2025 (EEGDM), TUEV test set, x100: Cohen's kappa / balanced accuracy / weighted F1.
PAPER_TUEV = {
    "EEGDM (paper)": (74.23, 75.57, 86.88),
    "LaBraM-Base": (64.33, 67.25, 82.01),
    "CBraMod": (67.72, 66.71, 83.42),
    "BIOT": (52.73, 52.81, 74.92),
    "Gram-L": (71.30, 74.87, 88.24),
}
PAPER_ABLATIONS = {
    "without mu-law": (72.50, 69.12, 85.79),
    "linear schedule": (70.97, 71.19, 85.07),
    "noise injection": (71.39, 56.19, 84.87),
    "no fusion": (61.60, 51.13, 79.93),
    "mean fusion": (65.05, 59.40, 82.08),
    "test at 190 Hz": (70.26, 72.78, 85.17),
    "test at 180 Hz": (66.54, 68.36, 83.38),
}


def _row(result: dict, seed) -> dict:
    """One result of a metrics.json as a report row (the layout every ``collect_*`` returns)."""
    return {"seed": seed, "method": result["method"], "label_fraction": result["label_fraction"],
            **{m: result[m] for m in METRICS}, "val_kappa": result["val_kappa"], "epochs": result.get("epochs"),
            "confusion": np.array(result["confusion"])}


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

    from .controls import per_class_recall

    rows = []
    for (method, fraction), group in results.groupby(["method", "label_fraction"], sort=False):
        recall = np.nanmean(np.stack([per_class_recall(c) for c in group["confusion"]]), axis=0)
        rows.append({"method": method, "labels": f"{fraction:.0%}", **dict(zip(class_names, recall))})
    return pd.DataFrame(rows)


def target_checks(table, recalls, label_fractions, min_recall: float = 0.2, min_seeds: int = 3):
    """The claims a report must back, each decided from the numbers: EEGDM above the band-power
    pipeline, the untrained-backbone control and EEGNet on kappa and balanced accuracy by more than
    the larger seed std of the two rows; every class recalled at least ``min_recall`` (mean over
    seeds); the LFT at least as good as a linear probe on the same cache; the pretrained cache's
    probe above the untrained one's. With fewer than ``min_seeds`` seeds a seed std means nothing,
    and the answer is "not assessed". Readouts are one deterministic fit (std 0); test-set
    sampling error is not part of the criterion."""
    import pandas as pd

    def row(method, fraction):
        return table[(table.method == method) & (table.labels == f"{fraction:.0%}")].iloc[0]

    checks = []

    def claim(fraction, text, measured, holds, seeds):
        checks.append({"labels": f"{fraction:.0%}", "claim": text, "measured": measured,
                       "holds": holds if seeds >= min_seeds else "not assessed"})

    for fraction in label_fractions:
        ours = row(EEGDM, fraction)
        seeds = int(ours["seeds"])
        for other in (BAND_POWER, UNTRAINED, EEGNET):
            theirs = row(other, fraction)
            for m in ("kappa", "balanced_accuracy"):
                margin = ours[f"{m}_mean"] - theirs[f"{m}_mean"]
                needed = max(ours[f"{m}_std"], theirs[f"{m}_std"])
                claim(fraction, f"EEGDM above {other} ({m.replace('_', ' ')})",
                      f"{margin:+.2f} (needs > {needed:.2f})", bool(margin > needed), seeds)
        rec = recalls[(recalls.method == EEGDM) & (recalls.labels == f"{fraction:.0%}")].iloc[0]
        worst = min((rec[c], c) for c in recalls.columns[2:])
        claim(fraction, f"EEGDM recalls every class >= {min_recall}", f"lowest: {worst[1]} {worst[0]:.2f}",
              bool(worst[0] >= min_recall), seeds)
        margin = ours["kappa_mean"] - row(PROBE, fraction)["kappa_mean"]
        claim(fraction, "LFT at least as good as the linear probe on its cache (kappa)", f"{margin:+.2f}",
              bool(margin >= 0), seeds)
        margin = row(PROBE, fraction)["kappa_mean"] - row(PROBE_UNTRAINED, fraction)["kappa_mean"]
        claim(fraction, "pretrained cache's probe above the untrained cache's (kappa; one fit each)",
              f"{margin:+.2f}", bool(margin > 0), min_seeds)
    return pd.DataFrame(checks)
