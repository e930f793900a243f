"""Plotting helpers shared by the notebooks (matplotlib/seaborn). Each returns the
figure; notebooks save it with :func:`eegdm_utils.core.figure_output.save_figure`."""

from __future__ import annotations

import numpy as np

from ..core.figure_output import set_figure_output
from ..data.montage import TCP_NAMES


def style(formats=("png",), dpi: int = 110) -> None:
    """The look of every figure of the collection (seaborn's whitegrid, bold titles, inline at
    100 dpi), and what :func:`eegdm_utils.core.figure_output.save_figure` writes: ``formats`` (png, pdf, svg,
    jpg) at ``dpi``; each notebook passes its ``figure_formats`` and ``figure_dpi`` parameters."""
    import matplotlib as mpl
    import seaborn as sns


    set_figure_output(formats, dpi)
    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.9)
    mpl.rcParams.update({"figure.dpi": 100, "axes.titleweight": "bold", "savefig.facecolor": "white",
                         "svg.fonttype": "none", "svg.hashsalt": "eegdm", "pdf.fonttype": 42})


# One colour per method family in every figure of the collection (tab10 colours): EEGDM red, its
# untrained-backbone control grey, EEGNet blue, band powers green, the cache probes orange (pretrained)
# and light orange (untrained), EEGFoundation purple; the self-supervised EEGDM of notebook 95 dark red.
METHOD_COLORS = {
    "EEGDM": "#d62728", "EEGDM, self-supervised": "#8c1c1c", "untrained backbone": "#7f7f7f",
    "EEGNet": "#1f77b4", "band powers": "#2ca02c", "linear probe, pretrained": "#ff7f0e",
    "linear probe, untrained": "#ffbb78", "EEGFoundation": "#9467bd", "EEGFoundation, no embedding": "#c5b0d5",
}


def method_color(method: str) -> str:
    """The colour of ``method`` (a row name of any table here) in :data:`METHOD_COLORS`: the family it
    belongs to, read from its name (controls first, so that "EEGDM, untrained backbone" is grey)."""
    name = method.lower()
    rules = (("no embedding", "EEGFoundation, no embedding"), ("eegfoundation", "EEGFoundation"),
             ("linear probe", "linear probe, untrained" if "untrained" in name else "linear probe, pretrained"),
             ("untrained", "untrained backbone"), ("band power", "band powers"), ("eegnet", "EEGNet"),
             ("self-supervised", "EEGDM, self-supervised"), ("eegdm", "EEGDM"))
    for key, family in rules:
        if key in name:
            return METHOD_COLORS[family]
    raise ValueError(f"no colour for method {method!r}: add its family to eegdm_utils.eval.figures.METHOD_COLORS")


def plain_log_ticks(axis) -> None:
    """Label a log-scaled axis at 1, 2 and 5 times each power of ten in plain numbers (0.05, 0.1,
    0.2), without the 4x10^-1 labels matplotlib puts on every minor tick of a short range."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def scale_bar_length(value: float) -> float:
    """The scale bar for traces ``value`` apart: 1, 2 or 5 times a power of ten, at most ``value``."""
    power = 10.0 ** np.floor(np.log10(value))
    return max(m * power for m in (1.0, 2.0, 5.0) if m * power <= value)


def plot_montage(ax, x: np.ndarray, sfreq: float, spacing: float | None = None, span: tuple[float, float] | None = None,
                 highlight: int | None = None, channel_names=TCP_NAMES, color: str = "k", title: str = "",
                 unit_uv: float = 100.0) -> float:
    """Stacked traces of a [K, L] window (in units of ``unit_uv`` microvolts), first channel on top.

    ``spacing`` (data units between traces; default from the data's spread, so a window on another
    scale is drawn at its own), ``span`` (s) shades the event, ``highlight`` colours one channel
    (the annotated one). A scale bar sits in the right margin, outside the traces, labelled in µV.
    Returns the spacing used.
    """
    K, L = x.shape
    t = np.arange(L) / sfreq
    if spacing is None:
        finite = x[np.isfinite(x)]
        spacing = max(0.5, 2.5 * float(np.std(finite))) if finite.size else 1.0
    for k in range(K):
        marked = highlight is not None and k == highlight
        ax.plot(t, x[k] - k * spacing, color="C3" if marked else color, lw=1.1 if marked else 0.6, zorder=3 if marked else 2)
    if span is not None:
        ax.axvspan(*span, color="C1", alpha=0.15, lw=0)
    ax.set_yticks([-k * spacing for k in range(K)])
    ax.set_yticklabels(channel_names[:K], fontsize=6)
    ax.set_ylim(-(K - 0.3) * spacing, 1.2 * spacing)
    ax.set_xlim(0, t[-1])
    ax.set_xlabel("time (s)")
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize=9)
    bar = scale_bar_length(spacing)  # data units
    x_bar = t[-1] * 1.02
    ax.plot([x_bar, x_bar], [0.9 * spacing, 0.9 * spacing - bar], color="C0", lw=2, clip_on=False)
    microvolts = bar * unit_uv
    label = f"{microvolts:,.0f} µV" if microvolts >= 1 else f"{microvolts:g} µV"
    ax.text(x_bar + t[-1] * 0.01, 0.9 * spacing - bar / 2, label, rotation=90, ha="left", va="center", fontsize=6,
            color="C0", clip_on=False)
    return spacing


def plot_class_examples(windows: list[np.ndarray], titles: list[str], sfreq: float, span: tuple[float, float],
                        highlights: list[int | None], ncols: int = 3):
    import matplotlib.pyplot as plt

    n = len(windows)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.0, 3.6 * nrows), squeeze=False)  # 7 inches: a page column
    for ax, x, title, h in zip(axes.flat, windows, titles, highlights):
        plot_montage(ax, x, sfreq, spacing=1.0, span=span, highlight=h, title=title.replace(", ", "\n", 1))
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def plot_psd_by_class(freqs: np.ndarray, log_psd: dict[str, np.ndarray], title: str = ""):
    """``log_psd``: class -> [n, F] log10 power; draws the mean and an interquartile band."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (name, values) in enumerate(log_psd.items()):
        if len(values) == 0:
            continue
        mean = values.mean(axis=0)
        lo, hi = np.percentile(values, [25, 75], axis=0)
        ax.plot(freqs, mean, color=f"C{i}", label=f"{name} (n={len(values)})")
        ax.fill_between(freqs, lo, hi, color=f"C{i}", alpha=0.12, lw=0)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("log10 power ((100 µV)^2/Hz)")
    ax.set_xlim(freqs[0], freqs[-1])
    ax.legend(fontsize=8, ncol=2)
    ax.set_title(title or "Power spectra by class")
    fig.tight_layout()
    return fig


def plot_class_counts(class_counts: dict[str, dict[str, int]]):
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    rows = [{"split": s, "class": c, "count": n} for s, counts in class_counts.items() for c, n in counts.items()]
    df = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    sns.barplot(data=df, x="class", y="count", hue="split", ax=ax)
    ax.set_yscale("log")
    ax.set_ylabel("annotation lines (log)")
    ax.set_title("Class counts per split")
    for container in ax.containers:
        ax.bar_label(container, fontsize=6, padding=1)
    fig.tight_layout()
    return fig


def plot_confusion(matrix: np.ndarray, class_names, title: str = "", normalize: bool = True, ax=None):
    import matplotlib.pyplot as plt
    import seaborn as sns

    m = np.asarray(matrix, dtype=float)
    shown = m / np.maximum(m.sum(axis=1, keepdims=True), 1) if normalize else m
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.6, 4))
    else:
        fig = ax.figure
    rows = [f"{c} (n={int(n)})" for c, n in zip(class_names, m.sum(axis=1))] if normalize else class_names
    sns.heatmap(shown, annot=True, fmt=".2f" if normalize else ".0f", cmap="Blues", vmin=0,
                vmax=1 if normalize else None, xticklabels=class_names, yticklabels=rows,
                cbar=False, ax=ax, annot_kws={"fontsize": 7})
    ax.set_xticklabels(class_names, rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true class (lines)" if normalize else "true class")
    ax.set_title(title or ("Confusion matrix (row-normalised)" if normalize else "Confusion matrix"))
    return fig


def plot_metric_bars(table, results, label_fractions, chance: dict[str, float], metrics=("kappa", "balanced_accuracy"),
                     title: str = ""):
    """Test metrics per method and label fraction: a bar for the mean over seeds with the population std,
    a dot for each seed (readouts: their one fit), and the chance level as a dashed line on top.
    ``table`` is :func:`eegdm_utils.eval.report.summary_table`'s output, ``results`` its input rows (×1, not ×100);
    ``chance`` maps a metric to its chance level ×100. Two panels fit a 7-inch column."""
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(table["method"]))
    fig, axes = plt.subplots(len(label_fractions), len(metrics), squeeze=False, sharey="row",
                             figsize=(7.0, (0.9 + 0.32 * len(methods)) * len(label_fractions)))
    for row, fraction in enumerate(label_fractions):
        part = table[table["labels"] == f"{fraction:.0%}"].set_index("method").reindex(methods)
        y = np.arange(len(methods))
        for ax, m in zip(axes[row], metrics):
            ax.barh(y, part[f"{m}_mean"], xerr=part[f"{m}_std"], capsize=2, color=[method_color(x) for x in methods],
                    error_kw={"lw": 0.8})
            for i, name in enumerate(methods):
                values = 100 * results[(results["method"] == name) & (results["label_fraction"] == fraction)][m].to_numpy()
                ax.scatter(values, np.full(len(values), i) + np.linspace(-0.18, 0.18, len(values)), color="k", s=7,
                           zorder=3, label="one seed" if i == 0 else None)
            if m in chance:
                ax.axvline(chance[m], color="k", ls="--", lw=1, zorder=4, label=f"chance ({chance[m]:.3g})")
                ax.set_xlim(left=min(ax.get_xlim()[0], chance[m] - 5))  # the line stays off the axis
            ax.set_xlabel(f"test {m.replace('_', ' ')} ×100")
            ax.set_title(f"{fraction:.0%} of the training labels", fontsize=9)
        axes[row, 0].set_yticks(y, methods, fontsize=8)
        axes[row, 0].invert_yaxis()
    handles, labels = axes[0, -1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04 / len(label_fractions), 1, 1))  # room for the legend below the panels
    return fig


def plot_per_subject(frame, methods: list[str], chance: float, title: str, xlabel: str = "test subject"):
    """Test accuracy per subject (``frame``: columns method, subject, accuracy in [0, 1]), one bar per
    method in its colour, with the chance level as a dashed line."""
    import matplotlib.pyplot as plt

    subjects = sorted(frame["subject"].unique())
    fig, ax = plt.subplots(figsize=(7.0, 4.8))
    width = 0.8 / len(methods)
    for j, method in enumerate(methods):
        part = frame[frame["method"] == method].set_index("subject").reindex(subjects)
        ax.bar(np.arange(len(subjects)) + (j - (len(methods) - 1) / 2) * width, 100 * part["accuracy"], width,
               color=method_color(method), label=method)
    ax.axhline(100 * chance, color="k", ls="--", lw=1, label=f"chance ({100 * chance:.0f}%)")
    ax.set(xticks=np.arange(len(subjects)), ylim=(0, 105), ylabel="test accuracy (%)", xlabel=xlabel)
    ax.set_xticklabels(subjects, rotation=0 if len(subjects) <= 6 else 45, ha="center" if len(subjects) <= 6 else "right",
                       fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.045 * ((len(methods) + 2) // 2), 1, 1))  # the legend below, clear of the axis label
    return fig
