"""Collecting seed runs into the report table, beside the published TUEV numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .runtime import read_json

METRICS = ("kappa", "balanced_accuracy", "weighted_f1")

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
            rows.append({"seed": result["seed"], "method": r["method"], "label_fraction": r["label_fraction"],
                         **{m: r[m] for m in METRICS}, "val_kappa": r["val_kappa"], "epochs": r["epochs"],
                         "confusion": np.array(r["confusion"])})
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
