"""The ablation table and figures (notebook 60 and ``tools/ablations.py``): the rows of
``run_dir/ablations/<variant>/seed_<N>.json`` over seeds, beside the paper's values, the full model
and the controls of the same run (band powers of notebook 45, the untrained-backbone LFT of notebook
40). One figure per paper table: test kappa per variant (bars: mean over seeds, dots: seeds), the
full model, the controls and chance as lines, the paper's value as a diamond; and one figure of
every variant the paper reports, our change from the full model against the paper's.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..core.figure_output import save_figure
from ..core.files import read_json
from .ablations import VARIANTS
from .figures import method_color
from .intervals import in_points, subject_bootstrap
from .paper import PAPER_NAMES, PAPER_RESULTS
from .report import BAND_POWER, UNTRAINED, collect_control_results, collect_seed_results, recorded_test_lines

METRICS = ("kappa", "balanced_accuracy", "weighted_f1")


def gather(run_dir: Path) -> tuple[pd.DataFrame, dict]:
    """(rows of every variant and seed, seconds per variant) from run_dir/ablations/."""
    rows, seconds = [], {}
    for path in sorted((run_dir / "ablations").glob("*/seed_*.json")):
        result = read_json(path)
        seconds[result["variant"]] = seconds.get(result["variant"], 0.0) + result["seconds"]["total"]
        rows += [{k: r[k] for k in ("variant", "table", "seed", "label_fraction", *METRICS, "val_kappa", "epochs")}
                 for r in result["rows"]]
    if not rows:
        raise FileNotFoundError(f"{run_dir / 'ablations'}: no variant results (<variant>/seed_<N>.json); "
                                "run `make ablations` first")
    return pd.DataFrame(rows), seconds


def line_predictions(run_dir: Path) -> dict:
    """{(variant, label fraction): [S, N] predicted class of every test line, one row per seed} of the
    seed files that record them (notebook 60 keeps them for the intervals of :func:`difference_intervals`)."""
    found = {}
    for path in sorted((run_dir / "ablations").glob("*/seed_*.json")):
        for r in read_json(path)["rows"]:
            if "line_predictions" in r:
                found.setdefault((r["variant"], r["label_fraction"]), []).append(r["line_predictions"])
    return {key: np.array(rows) for key, rows in found.items()}


def difference_intervals(run_dir: Path, n_boot: int = 2000, level: float = 0.95, variants=None) -> pd.DataFrame:
    """Each variant's change of test kappa from the full model (x100) per label fraction, with the
    subject-level paired bootstrap interval over the test subjects (:func:`eegdm_utils.eval.intervals.
    subject_bootstrap`, mean over each side's seeds); ``below``: the whole interval under zero. Empty
    when the full model's rows or notebook 45's record of the test lines (labels, subjects) are missing.
    ``variants``: only these (default: every variant that ran)."""
    columns = ["variant", "label_fraction", "difference", "low", "high", "below"]
    predictions = line_predictions(run_dir)
    try:
        lines = recorded_test_lines(run_dir)
    except FileNotFoundError:
        lines = None
    if lines is None:
        return pd.DataFrame(columns=columns)
    labels, subjects = np.asarray(lines["label"]), np.asarray(lines["subject"])
    n_classes = int(max(labels.max(), *(p.max() for p in predictions.values()))) + 1 if predictions else 0
    rows = []
    for (variant, fraction), pred in predictions.items():
        full = predictions.get(("full", fraction))
        if variant == "full" or full is None or (variants is not None and variant not in variants):
            continue
        if pred.shape[1] != len(labels) or full.shape[1] != len(labels):
            raise ValueError(f"{run_dir / 'ablations' / variant}: {pred.shape[1]} predicted test lines, notebook 45 "
                             f"recorded {len(labels)}: the sweep and the run are not of one store")
        r = in_points(subject_bootstrap(labels, pred, full, subjects, n_classes, n_boot=n_boot, level=level))
        rows.append({"variant": variant, "label_fraction": fraction, **{k: r[k] for k in ("difference", "low", "high")},
                     "below": r["high"] < 0})
    return pd.DataFrame(rows, columns=columns)


def references(run_dir: Path) -> dict:
    """{(method, label fraction): mean test kappa x100} of the band powers and the untrained control."""
    out = {}
    try:
        controls = collect_control_results(run_dir)
        for _, r in controls[controls["method"] == BAND_POWER].iterrows():
            out[(BAND_POWER, r["label_fraction"])] = 100 * r["kappa"]
    except FileNotFoundError:
        pass
    try:
        seeds = collect_seed_results(run_dir / "lft")
        for fraction, group in seeds[seeds["method"] == UNTRAINED].groupby("label_fraction"):
            out[(UNTRAINED, fraction)] = 100 * group["kappa"].mean()
    except FileNotFoundError:
        pass
    return out


def summary(results: pd.DataFrame, seconds: dict, intervals: pd.DataFrame | None = None) -> pd.DataFrame:
    """Mean ± population std x100 over seeds per variant and label fraction, the paper's values and the
    minutes; with ``intervals`` (:func:`difference_intervals`) also the change of kappa from the full
    model and its 95% interval over test subjects."""
    bounds = {} if intervals is None else {(r["variant"], r["label_fraction"]): r for _, r in intervals.iterrows()}
    rows = []
    for (variant, fraction), group in results.groupby(["variant", "label_fraction"], sort=False):
        row = {"table": group["table"].iloc[0], "variant": variant, "labels": f"{fraction:.0%}", "seeds": len(group)}
        for m in METRICS:
            values = 100 * group[m]
            row[m] = f"{values.mean():.1f} ± {values.std(ddof=0):.1f}"
        paper = PAPER_RESULTS.get(variant)
        if bounds:
            b = bounds.get((variant, fraction))
            row["Δ kappa vs full [95% CI]"] = f"{b['difference']:+.1f} [{b['low']:+.1f}, {b['high']:+.1f}]" if b is not None else ""
        row["paper (100%)"] = " / ".join(f"{x:.1f}" for x in paper) if paper and fraction == 1.0 else ""
        row["minutes"] = round(seconds.get(variant, 0.0) / 60, 1)
        rows.append(row)
    return pd.DataFrame(rows)


def paper_agreement(results: pd.DataFrame, intervals: pd.DataFrame | None = None) -> tuple[pd.DataFrame, float]:
    """Each variant the paper reports, with all labels: its test kappa minus the full model's (x100),
    ours (mean over seeds) beside the paper's, with the larger seed std of the two rows and, from
    ``intervals`` (:func:`difference_intervals`), the 95% interval over test subjects (``low``, ``high``;
    NaN without); and Spearman's rho between our and the paper's changes (NaN with fewer than three
    variants)."""
    bounds = {} if intervals is None else {r["variant"]: r for _, r in intervals[intervals["label_fraction"] == 1.0].iterrows()}
    part = results[results["label_fraction"] == 1.0]
    if "full" not in set(part["variant"]):
        raise ValueError("the full model's rows are needed to compare with the paper (variant 'full')")
    full = 100 * part[part["variant"] == "full"]["kappa"]
    rows = []
    for v, paper in PAPER_RESULTS.items():
        if v != "full" and v in set(part["variant"]):
            ours = 100 * part[part["variant"] == v]["kappa"]
            b = bounds.get(v)
            rows.append({"variant": v, "ours": ours.mean() - full.mean(),
                         "seed std": max(ours.std(ddof=0), full.std(ddof=0)),
                         "low": np.nan if b is None else b["low"], "high": np.nan if b is None else b["high"],
                         "paper": paper[0] - PAPER_RESULTS["full"][0]})
    table = pd.DataFrame(rows, columns=["variant", "ours", "seed std", "low", "high", "paper"])
    rho = float(spearmanr(table["ours"], table["paper"]).statistic) if len(table) >= 3 else np.nan
    return table, rho


def plot_table(results: pd.DataFrame, table: str, refs: dict, fig_dir: Path) -> Path:
    """The figure of one paper table, saved in ``fig_dir`` (named after the table)."""
    variants = ["full"] + [v for v, spec in VARIANTS.items() if spec.table == table and v != "full"]
    variants = [v for v in variants if v in set(results["variant"])]
    fractions = sorted(results["label_fraction"].unique(), reverse=True)
    fig, axes = plt.subplots(1, len(fractions), figsize=(7.0, 4.6), sharey=True, squeeze=False)
    for ax, fraction in zip(axes[0], fractions):
        part = results[results["label_fraction"] == fraction]
        for i, v in enumerate(variants):
            values = 100 * part[part["variant"] == v]["kappa"]
            # EEGDM's colour: the full model solid, its variants light
            ax.bar(i, values.mean(), color=method_color("EEGDM"), alpha=0.85 if v == "full" else 0.35, width=0.7)
            ax.plot([i] * len(values), values, "k.", ms=6)
            if fraction == 1.0 and v in PAPER_RESULTS:
                ax.plot(i, PAPER_RESULTS[v][0], "D", color="black", mfc="white", ms=7)
        full = 100 * part[part["variant"] == "full"]["kappa"].mean()
        ax.axhline(full, color=method_color("EEGDM"), lw=1.2, label="full model (mean)")
        styles = {BAND_POWER: (method_color(BAND_POWER), "--"), UNTRAINED: (method_color(UNTRAINED), ":")}
        for method, (color, ls) in styles.items():
            if (method, fraction) in refs:
                ax.axhline(refs[(method, fraction)], color=color, ls=ls, lw=1.2, label=method)
        ax.axhline(0, color="k", lw=0.8, label="chance (kappa 0)")
        names = ["full model" if v == "full" else PAPER_NAMES.get(v, v.replace("_", " ") + " (ours)") for v in variants]
        ax.set_xticks(range(len(variants)), names, rotation=40,
                      ha="right", fontsize=7)
        ax.set_title(f"{fraction:.0%} of the labels", fontsize=9)
    axes[0, 0].set_ylabel("test Cohen's kappa (x100)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    handles += [plt.Line2D([], [], color="k", marker=".", ls=""),
                plt.Line2D([], [], color="k", marker="D", mfc="white", ls="")]
    labels += ["one seed", "paper (TUEV, 100%)"]
    fig.suptitle(f"Ablation {table}: test kappa per variant (bars: mean over seeds)", fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=3, frameon=False)
    name = re.sub(r"[^a-z0-9]+", "_", table.lower()).strip("_")
    return save_figure(fig, name, fig_dir)


def plot_agreement(table: pd.DataFrame, rho: float, fig_dir: Path) -> Path:
    """Our change of test kappa from the full model against the paper's, one point per variant the
    paper reports (error bars: the 95% interval over test subjects of :func:`paper_agreement` where it has
    one, the seed std otherwise), with the line of equal change."""
    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    fig.subplots_adjust(left=0.09, right=0.52, bottom=0.12, top=0.88)  # the key of variants on the right
    has_interval = table["low"].notna().all() and len(table)
    if has_interval:
        yerr = np.clip(np.vstack([table["ours"] - table["low"], table["high"] - table["ours"]]), 0, None)
        bar = "bar: 95% interval over test subjects"
    else:
        yerr, bar = table["seed std"], "bar: seed std"
    ax.errorbar(table["paper"], table["ours"], yerr=yerr, fmt="o", color=method_color("EEGDM"), capsize=3,
                label=f"variant (mean over seeds; {bar})")
    key = []
    for number, (_, r) in enumerate(table.sort_values("paper").iterrows(), start=1):
        # numbers at the points, names in a key beside the axes (names at the points overlap)
        ax.annotate(str(number), (r["paper"], r["ours"]), textcoords="offset points", xytext=(5, 3), fontsize=9,
                    fontweight="bold")
        key.append(f"{number}  {PAPER_NAMES.get(r['variant'], r['variant'])}: ours {r['ours']:+.1f}, paper {r['paper']:+.1f}")
    ax.text(1.04, 1.0, "\n".join(key), transform=ax.transAxes, va="top", fontsize=7, family="monospace")
    low = min(table["paper"].min(), (table["ours"] - (yerr[0] if has_interval else table["seed std"])).min(), 0) - 2
    ax.plot([low, 2], [low, 2], color="gray", lw=1, ls="--", label="same change as the paper")
    ax.axhline(0, color="black", lw=1.0, label="the full model (no change)")
    ax.axvline(0, color="black", lw=1.0)
    ax.set_xlim(table["paper"].min() - 2, 2)  # the paper's range: the points, not the diagonal, fill the axis
    ax.set_xlabel("paper (TUEV): change of test kappa (x100)", fontsize=8)
    ax.set_ylabel("ours (simulated): change of test kappa (x100)", fontsize=8)
    ax.set_title(f"Ablations against the paper, all labels\n(Spearman's rho {rho:.2f})", fontsize=9)
    ax.legend(fontsize=6.5, loc="lower left")
    return save_figure(fig, "agreement_with_paper", fig_dir)
