"""Label- and pretraining-data scaling curves (``make scale-curves``, ``tools/scale_curves.py``).

Two questions the default run cannot answer with its 22 training subjects:

1. **Labelled data**: with the backbone of ``make run`` fixed, how do the LFT, EEGNet, the cache
   probes and band powers move with 22, 88, 176 ... labelled training subjects?
2. **Unlabelled data**: does pretraining on more subjects that are never labelled (22 ... 176, at
   each number of steps) give a better representation for the same 22 labelled subjects?

One simulated corpus from the same generator serves both (more subjects, nothing else changed): its
first ``max(labelled)`` training subjects are the labelled pool, the next ``max(unlabelled)`` the
unlabelled pool (never labelled, never tested), and ``test_subjects`` evaluation subjects a fixed test
set larger than ``make run``'s. Every window goes into one store split; each point is a
:class:`~eegdm_utils.data.real_folders.FoldView` of it with subject-wise train / validation / test
splits (validation: the reference's 20% rule over the point's own subjects, so it scales alike).

Each (curve, point, method, label fraction, seed) is one JSON file; a file that exists is not fitted
again, so an interrupted sweep resumes and a user with more time adds points or seeds.

Shape letters: N windows, S seeds, L test lines.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ..core.figure_output import save_figure
from ..core.files import atomic_write_json, read_json
from ..core.scoring import per_class_recall
from ..data.recordings import choose_validation
from ..data.simulate import SimulationConfig
from .figures import method_color
from .intervals import in_points, subject_bootstrap, subject_interval
from .report import BAND_POWER, EEGDM, EEGNET, PROBE, PROBE_UNTRAINED, UNTRAINED

METRICS = ("kappa", "balanced_accuracy", "weighted_f1")
LABELLED_METHODS = (EEGDM, EEGNET, PROBE, PROBE_UNTRAINED, BAND_POWER)
UNLABELLED_METHODS = (EEGDM, PROBE)


@dataclass(frozen=True)
class ScalePlan:
    """The points of both curves and how each is fitted."""

    labelled: tuple[int, ...] = (22, 88, 176)  # labelled subjects (train + validation) of curve 1
    unlabelled: tuple[int, ...] = (22, 176)  # unlabelled pretraining subjects of curve 2
    steps: tuple[int, ...] = (800, 3200)  # pretraining steps of curve 2
    test_subjects: int = 28  # the fixed test set of both curves
    seeds: tuple[int, ...] = (0, 1)  # of the LFT and EEGNet (readouts: one deterministic fit); 2 to fit 90 min on 2 cores
    fractions: tuple[float, ...] = (1.0, 0.1)  # label fractions of curve 2 (curve 1: all labels)
    base_labelled: int = 22  # the labelled subjects curve 2 is evaluated on
    val_fraction: float = 0.2
    split_seed: int = 4523

    def __post_init__(self):
        if self.base_labelled > max(self.labelled):
            raise ValueError(f"base_labelled {self.base_labelled} exceeds the labelled pool ({max(self.labelled)})")
        for name in ("labelled", "unlabelled"):
            if any(n < 2 for n in getattr(self, name)):
                raise ValueError(f"{name}: every point needs at least 2 subjects (one for validation), got "
                                 f"{getattr(self, name)}")

    def corpus(self, base: SimulationConfig) -> SimulationConfig:
        """The simulated corpus of both curves: ``base`` with more subjects, nothing else changed."""
        return replace(base, n_train_subjects=max(self.labelled) + max(self.unlabelled),
                       n_eval_subjects=self.test_subjects)


def subject_pools(train_subjects, eval_subjects, plan: ScalePlan) -> dict[str, list[str]]:
    """{labelled, unlabelled, test}: the corpus's training subjects in their order (the simulator's
    subject number) split into the labelled and the unlabelled pool; its evaluation subjects are the
    test set. No subject is in two pools."""
    ordered = sorted(train_subjects)
    n_l, n_u = max(plan.labelled), max(plan.unlabelled)
    if len(ordered) < n_l + n_u:
        raise ValueError(f"the corpus has {len(ordered)} training subjects; the plan needs {n_l} labelled + {n_u} "
                         "unlabelled")
    if len(set(eval_subjects)) < plan.test_subjects:
        raise ValueError(f"the corpus has {len(set(eval_subjects))} evaluation subjects; the plan needs "
                         f"{plan.test_subjects}")
    return {"labelled": ordered[:n_l], "unlabelled": ordered[n_l:n_l + n_u],
            "test": sorted(set(eval_subjects))[:plan.test_subjects]}


def point_splits(window_subject: np.ndarray, subjects, test_subjects, plan: ScalePlan) -> dict[str, np.ndarray]:
    """{train, val, test: window indices} of one point: ``subjects`` split into training and validation
    subjects by the reference's rule (at least one validation subject), every window of ``test_subjects``
    as the test split."""
    subjects = sorted(set(subjects))
    if set(subjects) & set(test_subjects):
        raise ValueError(f"subjects {sorted(set(subjects) & set(test_subjects))} are in the training pool and the test set")
    val = set(choose_validation(subjects, max(plan.val_fraction, 1 / len(subjects)), plan.split_seed))
    train = set(subjects) - val
    return {"train": np.flatnonzero(np.isin(window_subject, sorted(train))),
            "val": np.flatnonzero(np.isin(window_subject, sorted(val))),
            "test": np.flatnonzero(np.isin(window_subject, sorted(test_subjects)))}


def fit_path(folder: Path, method: str, fraction: float, seed: int | None) -> Path:
    """The result file of one fit (``seed`` None: a deterministic readout, fitted once)."""
    name = method.replace(", ", "_").replace(" + ", "_").replace(" ", "_")
    return Path(folder) / f"{name}_{fraction:g}" / ("fit.json" if seed is None else f"seed_{seed}.json")


def record_fit(path: Path, metrics: dict, line_predictions, val_kappa: float, seconds: float, **extra) -> dict:
    """Write one fit's test metrics, the predicted class of every test line (for the intervals), its best
    validation kappa and its wall time."""
    row = {**{m: float(metrics[m]) for m in METRICS}, "confusion": np.asarray(metrics["confusion"]).tolist(),
           "line_predictions": np.asarray(line_predictions).astype(int).tolist(), "val_kappa": float(val_kappa),
           "seconds": round(float(seconds), 1), **extra}
    atomic_write_json(path, row)
    return row


def collect(scale_dir: Path) -> list[dict]:
    """Every fit of both curves: {curve, point, method, fraction, seed, metrics, line_predictions, ...}
    from ``scale_dir/<curve>/<point>/<method>_<fraction>/(seed_N|fit).json``."""
    rows = []
    for path in sorted(Path(scale_dir).glob("*/*/*/*.json")):
        curve, point, fit = path.parts[-4], path.parts[-3], path.parts[-2]
        if curve not in ("labelled", "unlabelled"):
            continue
        r = read_json(path)
        seed = None if path.stem == "fit" else int(path.stem.split("_")[1])
        rows.append({"curve": curve, "point": point, "fit": fit, "seed": seed, **r})
    return rows


def point_value(point: str) -> dict:
    """'L88' -> {labelled: 88}; 'U176_s3200' -> {unlabelled: 176, steps: 3200}; 'untrained' -> {}."""
    if point.startswith("L"):
        return {"labelled": int(point[1:])}
    if point.startswith("U"):
        subjects, steps = point[1:].split("_s")
        return {"unlabelled": int(subjects), "steps": int(steps)}
    return {}


def summarise(rows: list[dict], test_lines: dict, n_classes: int, class_names, n_boot: int = 2000) -> list[dict]:
    """One row per (curve, point, method, fraction): metrics x100 as mean and population std over seeds,
    the 95% interval of each over test subjects (:func:`subject_interval`), per-class recall (mean over
    seeds), the training windows and the wall time (sum over seeds). ``test_lines``: {label [L],
    subject [L]} in the order the predictions follow."""
    labels, subjects = np.asarray(test_lines["label"]), np.asarray(test_lines["subject"])
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["curve"], r["point"], r["method"], r["fraction"]), []).append(r)
    out = []
    for (curve, point, method, fraction), fits in sorted(groups.items(), key=lambda kv: _order(kv[0])):
        predictions = np.array([f["line_predictions"] for f in fits])  # [S, L]
        if predictions.shape[1] != len(labels):
            raise ValueError(f"{curve}/{point}/{method}: {predictions.shape[1]} predicted test lines, the test set "
                             f"has {len(labels)}")
        row = {"curve": curve, "point": point, **point_value(point), "method": method, "fraction": fraction,
               "seeds": len(fits) if fits[0]["seed"] is not None else 0,
               "train_windows": int(fits[0]["train_windows"]), "minutes": round(sum(f["seconds"] for f in fits) / 60, 2)}
        for m in METRICS:
            values = 100 * np.array([f[m] for f in fits])
            row[m], row[f"{m}_std"] = float(values.mean()), float(values.std())
            if m in ("kappa", "balanced_accuracy"):
                iv = subject_interval(labels, predictions, subjects, n_classes, metric=m, n_boot=n_boot)
                row[f"{m}_low"], row[f"{m}_high"] = 100 * iv["low"], 100 * iv["high"]
        with warnings.catch_warnings():  # a class absent from the test set: NaN recall, not a warning
            warnings.simplefilter("ignore", RuntimeWarning)
            recall = np.nanmean([per_class_recall(np.array(f["confusion"])) for f in fits], axis=0)
        row["recall"] = dict(zip(class_names, np.round(recall, 3).tolist()))
        out.append(row)
    return out


def _order(key: tuple) -> tuple:
    curve, point, method, fraction = key
    v = point_value(point)
    return (curve, v.get("labelled", 0), v.get("unlabelled", 0), v.get("steps", 0), method, -fraction)


def difference(rows: list[dict], test_lines: dict, n_classes: int, a: tuple, b: tuple, metric: str = "kappa",
               n_boot: int = 2000) -> dict | None:
    """The paired subject bootstrap (x100) of ``metric`` between two fits given as (curve, point, method,
    fraction), each averaged over its seeds; None when either has not run."""
    def predictions(key):
        fits = [r for r in rows if (r["curve"], r["point"], r["method"], r["fraction"]) == key]
        return np.array([f["line_predictions"] for f in fits]) if fits else None

    pa, pb = predictions(a), predictions(b)
    if pa is None or pb is None:
        return None
    return in_points(subject_bootstrap(test_lines["label"], pa, pb, test_lines["subject"], n_classes, metric=metric,
                                       n_boot=n_boot))


def test_lines(view, window_subject: np.ndarray, splits: dict) -> dict:
    """{label, subject} of a point's test lines, in the order its predictions follow (``window_subject``:
    the store's subject of every window, ``splits``: the point's :func:`point_splits`)."""
    lines = view.faithful("test")
    return {"label": lines["label"].astype(int).tolist(),
            "subject": window_subject[np.sort(splits["test"])][lines["window"]].tolist()}


# ---------------------------------------------------------------- conclusions from the numbers

def conclusions(rows: list[dict], fits: list[dict], test_lines: dict, n_classes: int, plan: ScalePlan,
                tuev_factor: float = 100.0) -> list[str]:
    """Sentences computed from the curves (kappa x100, intervals over test subjects): where the LFT
    reaches the probe of its cache, where EEGDM and EEGNet pass band powers beyond the interval, how the
    unlabelled points compare with the untrained control, and what a straight line in log training
    windows predicts at ``tuev_factor`` times the smallest labelled point (TUEV's training set is about
    100 times the default run's)."""
    out = []

    def diff(a, b):
        return difference(fits, test_lines, n_classes, a, b)

    def verdict(d):
        if d is None:
            return None
        where = ("above zero beyond the interval" if d["low"] > 0 else "below zero beyond the interval" if d["high"] < 0
                 else "the interval contains zero")
        return f"{d['difference']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}]", where

    labelled = sorted({r["labelled"] for r in rows if r["curve"] == "labelled"})
    for method, other, text in ((EEGDM, PROBE, "LFT minus the linear probe of its cache"),
                                (EEGDM, BAND_POWER, "LFT minus band powers"), (EEGNET, BAND_POWER, "EEGNet minus band powers")):
        parts = []
        for n in labelled:
            v = verdict(diff(("labelled", f"L{n}", method, 1.0), ("labelled", f"L{n}", other, 1.0)))
            if v:
                parts.append(f"{n} subjects {v[0]} ({v[1]})")
        if parts:
            out.append(f"{text}, test kappa x100 [95% interval over test subjects]: " + "; ".join(parts) + ".")
    trend = _trend(rows, EEGDM, BAND_POWER, tuev_factor)
    if trend is not None:
        slope, at_tuev, smallest, other_last = trend
        largest = max(r["train_windows"] for r in rows if r["curve"] == "labelled")
        reach = _reach(at_tuev, other_last, tuev_factor, smallest)
        out.append(f"A straight line in log2 training windows through the LFT's lead over band powers changes it by "
                   f"{slope:+.1f} kappa per doubling and {reach}; an extrapolation "
                   f"{np.log10(tuev_factor * smallest / largest):.1f} decades beyond the last point, not a measurement.")
    for fraction in plan.fractions:
        parts = []
        for r in rows:
            if r["curve"] == "unlabelled" and r["method"] == EEGDM and r["fraction"] == fraction and "steps" in r:
                v = verdict(diff(("unlabelled", r["point"], EEGDM, fraction), ("unlabelled", "reference", UNTRAINED, fraction)))
                if v:
                    parts.append(f"{r['unlabelled']} subjects x {r['steps']} steps {v[0]} ({v[1]})")
        if parts:
            out.append(f"{fraction:.0%} labels, LFT minus its untrained control: " + "; ".join(parts) + ".")
    return out


def _trend(rows: list[dict], method: str, other: str, tuev_factor: float = 100.0):
    """(kappa change of ``method - other`` per doubling of training windows, its value at ``tuev_factor``
    times the smallest point, the smallest point's windows) by least squares over the labelled points;
    None with fewer than two points."""
    points = {}
    for r in rows:
        if r["curve"] == "labelled" and r["method"] in (method, other):
            points.setdefault(r["labelled"], {})[r["method"]] = r
    both = sorted((v for v in points.values() if method in v and other in v), key=lambda v: v[method]["train_windows"])
    if len(both) < 2:
        return None
    windows = np.array([v[method]["train_windows"] for v in both])
    slope, intercept = np.polyfit(np.log2(windows), [v[method]["kappa"] - v[other]["kappa"] for v in both], 1)
    return (float(slope), float(intercept + slope * np.log2(tuev_factor * windows[0])), int(windows[0]),
            float(both[-1][other]["kappa"]))


def _reach(lead: float, other_last: float, tuev_factor: float, smallest: int) -> str:
    """What the line's ``lead`` over the other method at ``tuev_factor`` times the smallest point says: the
    lead, or that it is no prediction when it would put the method's kappa outside [-100, 100] with the
    other method held at its last measured kappa ``other_last``."""
    where = f"{tuev_factor:g} times the {smallest:,} windows of the smallest point (about TUEV's size)"
    if abs(other_last + lead) <= 100:
        return f"predicts {lead:+.1f} at {where}"
    return (f"would put the LFT at kappa {other_last + lead:.0f} at {where}, with band powers at their last "
            f"{other_last:.1f}: outside kappa's range, no usable prediction")


# ---------------------------------------------------------------- figures

def _point_ticks(ax, values) -> None:
    """A log x axis labelled at the curve's own points, in plain numbers."""
    from matplotlib.ticker import NullFormatter, NullLocator

    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(values, [f"{v:,}" for v in values])
    if len(values) == 1:
        ax.set_xlim(values[0] / 2, values[0] * 2)


def plot_curves(rows: list[dict], fig_dir: Path) -> list[Path]:
    """Two figures: each metric against labelled training windows (log axis) for every method of curve 1;
    and the LFT and probe against unlabelled pretraining subjects, one line per step count, per label
    fraction, with the untrained control and band powers of the same labelled subjects. Chance and the
    band-power line on every panel; error bars: 95% intervals over test subjects."""
    chance = {"kappa": 0.0, "balanced_accuracy": 100.0 / len(rows[0]["recall"]) if rows else 0.0}
    names = {"kappa": "test Cohen's kappa (x100)", "balanced_accuracy": "test balanced accuracy (%)"}
    paths = []
    labelled = [r for r in rows if r["curve"] == "labelled"]
    if labelled:
        fig, axes = plt.subplots(1, 2, figsize=(7.0, 3.8), sharex=True)
        for ax, metric in zip(axes, ("kappa", "balanced_accuracy")):
            for method in dict.fromkeys(r["method"] for r in labelled):
                part = sorted((r for r in labelled if r["method"] == method), key=lambda r: r["train_windows"])
                x = [r["train_windows"] for r in part]
                y = np.array([r[metric] for r in part])
                err = np.array([[r[metric] - r[f"{metric}_low"], r[f"{metric}_high"] - r[metric]] for r in part]).T
                style = "--" if method == BAND_POWER else "-"
                ax.errorbar(x, y, yerr=err, color=method_color(method), ls=style, marker="o", ms=4, capsize=2, lw=1.4,
                            label=method)
            ax.axhline(chance[metric], color="black", lw=0.8, ls=":", label="chance")
            _point_ticks(ax, sorted({r["train_windows"] for r in labelled if r["method"] == EEGDM}))
            ax.set_ylabel(names[metric])
        fig.supxlabel("labelled training windows (log scale; the points' subjects in the title)", fontsize=9, y=0.17)
        subjects = sorted({r["labelled"] for r in labelled})
        axes[0].set_title(f"{', '.join(map(str, subjects))} labelled subjects", fontsize=9)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.suptitle("More labels, backbone fixed (bars: 95% interval over test subjects)", fontsize=10)
        fig.tight_layout(rect=(0, 0.2, 1, 1))
        fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7, frameon=False)
        paths.append(save_figure(fig, "labelled_data", fig_dir))
    pretrained = [r for r in rows if r["curve"] == "unlabelled" and "steps" in r]
    if pretrained:
        fractions = sorted({r["fraction"] for r in pretrained}, reverse=True)
        reference = {(r["method"], r["fraction"]): r for r in rows if r["curve"] == "unlabelled" and "steps" not in r}
        fig, axes = plt.subplots(1, len(fractions), figsize=(7.0, 3.8), sharey=True, squeeze=False)
        for ax, fraction in zip(axes[0], fractions):
            for steps, dash, marker in zip(sorted({r["steps"] for r in pretrained}), ("-", "--", "-.", ":"), "osD^"):
                for method in (EEGDM, PROBE):
                    part = sorted((r for r in pretrained if r["steps"] == steps and r["method"] == method
                                   and r["fraction"] == fraction), key=lambda r: r["unlabelled"])
                    if not part:
                        continue
                    x = [r["unlabelled"] for r in part]
                    y = np.array([r["kappa"] for r in part])
                    err = np.array([[r["kappa"] - r["kappa_low"], r["kappa_high"] - r["kappa"]] for r in part]).T
                    ax.errorbar(x, y, yerr=err, color=method_color(method), ls=dash, marker=marker, ms=4, capsize=2,
                                label=f"{'LFT' if method == EEGDM else 'linear probe'}, {steps} steps")
            for method, ls in ((UNTRAINED, "-"), (BAND_POWER, "--")):
                r = reference.get((method, fraction))
                if r:
                    ax.axhline(r["kappa"], color=method_color(method), ls=ls, lw=1.2, label=method)
            ax.axhline(0, color="black", lw=0.8, ls=":", label="chance")
            _point_ticks(ax, sorted({r["unlabelled"] for r in pretrained}))
            ax.set_title(f"{fraction:.0%} of the labels", fontsize=9)
        fig.supxlabel("unlabelled pretraining subjects (log scale)", fontsize=9, y=0.21)
        axes[0, 0].set_ylabel(names["kappa"])
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.suptitle("More unlabelled pretraining data, the same labelled subjects", fontsize=10)
        fig.tight_layout(rect=(0, 0.24, 1, 1))
        fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7, frameon=False)
        paths.append(save_figure(fig, "unlabelled_data", fig_dir))
    return paths
