"""Figures of notebooks 80 and 85. Each function returns the figure; the notebooks save
it with :func:`eegdm_utils.core.figure_output.save_figure`.

Shape letters: B images, S samples per EEG, H height, W width, C channels, L samples.
"""

from __future__ import annotations

import textwrap

import numpy as np

WIDTH = 7.0  # inches: every figure fits a two-column page or a slide

# one colour per EEG-to-image method (its shuffled-EEG control: the same colour, hatched and pale)
E2I_COLORS = {"DreamDiffusion": "#1f77b4", "structure-guided": "#d62728", "both": "#9467bd",
              "SGDM-style: contrastive embedding prompt": "#ff7f0e", "two-stage (ridge)": "#2ca02c",
              "linear decoder -> class prompt": "#8c564b", "unconditional": "#7f7f7f",
              "true-class prompt (bound)": "#17becf"}


def e2i_color(method: str) -> str:
    """The colour of an EEG-to-image method (a row of notebook 85's table, with or without its
    ", shuffled EEG" suffix or a zero-shot qualifier)."""
    for name, colour in E2I_COLORS.items():
        if method.startswith(name):
            return colour
    raise ValueError(f"no colour for EEG-to-image method {method!r}: add it to E2I_COLORS")


def _wrapped(labels, width: int = 24) -> list[str]:
    return ["\n".join(textwrap.wrap(label, width)) for label in labels]


def show_image(ax, image) -> None:
    """Draw one image in [-1, 1] without ticks: [H, W] or [1, H, W] in grey, [3, H, W] or [H, W, 3] in colour."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] in (1, 3):
        image = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    if image.ndim == 3:
        ax.imshow(np.clip((image + 1.0) / 2.0, 0.0, 1.0))
    else:
        ax.imshow(image, cmap="gray", vmin=-1, vmax=1)
    ax.set_aspect("equal", adjustable="box")  # square pixels, whatever the figure's width
    ax.set_xticks([])
    ax.set_yticks([])


def plot_stimuli_and_erps(images, labels, eeg, trial_labels, channel_names, sfreq, channels=("O1", "P8", "Pz"),
                          per_class: int = 3):
    """Example stimuli of every class, and the class-average evoked response at a few channels."""
    import matplotlib.pyplot as plt

    n_classes = int(labels.max()) + 1
    fig = plt.figure(figsize=(WIDTH, 4.4))
    grid = fig.add_gridspec(per_class + 1, max(n_classes, 3 * len(channels)), height_ratios=[1] * per_class + [4.2])
    rng = np.random.default_rng(0)
    for c in range(n_classes):
        for k, i in enumerate(rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False)):
            ax = fig.add_subplot(grid[k, c])
            show_image(ax, images[i])
            ax.set_axis_off()
            if k == 0:
                ax.set_title(str(c), fontsize=9)
    t = 1000 * np.arange(eeg.shape[-1]) / sfreq
    width = grid.ncols // len(channels)
    for j, name in enumerate(channels):
        ax = fig.add_subplot(grid[per_class, j * width:(j + 1) * width])
        k = list(channel_names).index(name)
        for c in range(n_classes):
            ax.plot(t, eeg[trial_labels == c, k].mean(axis=0), lw=1, color=f"C{c}", label=str(c))
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(f"{name}: class-average ERP", fontsize=8)
        ax.set_xlabel("time after onset (ms)", fontsize=8)
        ax.tick_params(labelsize=7)
        if j == 0:
            ax.set_ylabel("amplitude (µV)", fontsize=8)
    ax.legend(fontsize=6, ncol=2, title="digit", title_fontsize=6)
    fig.tight_layout()
    return fig


def plot_loss_curves(histories: dict, title: str, key: str = "loss", val_points: dict | None = None):
    """Training loss per run (``histories``: label -> {"step": [...], key: [...]})."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for i, (label, history) in enumerate(histories.items()):
        ax.plot(history["step"], history[key], color=f"C{i}", label=label)
        if val_points and label in val_points:
            ax.scatter([history["step"][-1]], [val_points[label]], color=f"C{i}", marker="o", zorder=3)
    ax.set_xlabel("step")
    ax.set_ylabel("masked-token MSE" if key == "loss" else key)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_masked_reconstruction(signal, reconstruction, hidden, channel_names, sfreq, patch, channels, title=""):
    """One trial [C, L]: the signal, the hidden tokens shaded, the reconstruction of the hidden part."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(channels), 1, figsize=(WIDTH, 1.3 * len(channels)), sharex=True)
    t = 1000 * np.arange(signal.shape[-1]) / sfreq
    for ax, name in zip(np.atleast_1d(axes), channels):
        k = list(channel_names).index(name)
        ax.plot(t, signal[k], color="k", lw=0.9, label="EEG (normalised)")
        shown = np.where(np.repeat(hidden, patch).astype(bool), reconstruction[k], np.nan)
        ax.plot(t, shown, color="C3", lw=1.1, label="reconstruction of hidden tokens")
        for j in np.flatnonzero(hidden):
            ax.axvspan(t[j * patch], t[min(len(t) - 1, (j + 1) * patch - 1)], color="C0", alpha=0.12, lw=0)
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
        ax.set_yticks([])
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="upper right", ncol=2)
    np.atleast_1d(axes)[-1].set_xlabel("time after image onset (ms)")
    if title:
        np.atleast_1d(axes)[0].set_title(title)
    fig.tight_layout()
    return fig


def plot_block_design(results: dict):
    """``results``: design -> {"random_trial": acc, "leave_block_out": acc, "chance": c}."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    designs = list(results)
    x = np.arange(len(designs))
    for k, split in enumerate(("random_trial", "leave_block_out")):
        values = [results[d][split] for d in designs]
        bars = ax.bar(x + (k - 0.5) * 0.38, values, 0.38, label=split.replace("_", " ") + " split")
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.axhline(results[designs[0]]["chance"], color="k", ls="--", lw=1, label="chance")
    ax.set_xticks(x, designs, fontsize=8)
    ax.set_ylabel("10-way decoding accuracy")
    ax.set_ylim(0, 1.3)
    ax.set_yticks(np.arange(0, 1.01, 0.2))
    ax.set_title("The block-design pitfall: a random-trial split decodes the block")
    ax.legend(fontsize=7, loc="upper left", ncol=3)
    fig.tight_layout()
    return fig


def plot_reconstruction_grid(stimuli, reconstructions: dict, samples: int, title: str = ""):
    """Rows: stimuli, then ``samples`` reconstructions per method; columns: test images.

    ``stimuli``: [B, ...] images; ``reconstructions``: method -> [B, S, ...] (several samples per EEG),
    each image as :func:`show_image` takes it.
    """
    import matplotlib.pyplot as plt

    B = len(stimuli)
    rows = 1 + samples * len(reconstructions)
    cell = min(0.62, (WIDTH - 2.0) / B)  # inches per image, 2 inches for the row labels
    fig, axes = plt.subplots(rows, B, figsize=(cell * B + 2.0, cell * rows + 0.5), squeeze=False)
    labels = ["stimulus"] + [f"{m} #{s + 1}" for m in reconstructions for s in range(samples)]
    images = [stimuli] + [recon[:, s] for recon in reconstructions.values() for s in range(samples)]
    for r, (row_images, label) in enumerate(zip(images, labels)):
        for b in range(B):
            show_image(axes[r, b], row_images[b])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.tight_layout(pad=0.2, h_pad=0.1, w_pad=0.1, rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_stage_b(history: dict, samples, judged: float, guidance_scale: float, class_names=None):
    """Stage-B pretraining: the loss per step, and samples drawn with each class prompt.

    ``history``: {"step": [...], "loss": [...]}; ``samples``: [K, S, ...] (S samples per class
    prompt, each image as :func:`show_image` takes it); ``judged``: the share the judge assigns
    to the prompted class.
    """
    import matplotlib.pyplot as plt

    K, S = len(samples), len(samples[0])
    fig = plt.figure(figsize=(WIDTH, 3.6))
    outer = fig.add_gridspec(1, 2, width_ratios=[1.2, 0.9 * S / K], wspace=0.2, top=0.88)
    ax = fig.add_subplot(outer[0])
    ax.plot(history["step"], history["loss"], color="C0")
    ax.set_xlabel("optimizer step", fontsize=8)
    ax.set_ylabel("epsilon MSE (training batches)", fontsize=8)
    ax.set_title("Stage B pretraining\n(images with class prompts)", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    inner = outer[1].subgridspec(K, S, wspace=0.08, hspace=0.08)
    for k in range(K):
        for j in range(S):
            cell = fig.add_subplot(inner[k, j])
            show_image(cell, samples[k][j])
            if j == 0:
                name = class_names[k] if class_names is not None else str(k)
                cell.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
    box = outer[1].get_position(fig)
    fig.text(box.x0 - 0.05, (box.y0 + box.y1) / 2, "class prompt", rotation=90, va="center", ha="center", fontsize=9)
    fig.text((box.x0 + box.x1) / 2, 0.93, f"{S} samples per class prompt (rows), guidance {guidance_scale:g}:\n"
             f"the judge calls {judged:.0%} of them their prompt's class", ha="center", fontsize=8)
    return fig


METRIC_LABELS = {"top1_2way": "2-way top-1", "top1_5way": "5-way top-1", "top1_10way": "10-way top-1 (judge)",
                 "top1_10way_judged": "10-way top-1 (judge's truth)", "two_way_features": "2-way identification",
                 "two_way_within_class": "2-way within class", "two_way_embedding": "2-way (embedder features)",
                 "pixcorr": "PixCorr", "ssim": "SSIM"}


def _panel_grid(n_panels: int, rows_per_panel: int, label_lines: int = 2):
    """(figure, the ``n_panels`` metric axes, the spare axes of the last row): at most three panels a
    row, within :data:`WIDTH`; a spare axis holds the legend."""
    import matplotlib.pyplot as plt

    ncols = min(3, n_panels)
    nrows = -(-n_panels // ncols)
    height = 0.26 * rows_per_panel * label_lines / 1.6 + 1.1
    fig, axes = plt.subplots(nrows, ncols, figsize=(WIDTH, height * nrows + 0.5), squeeze=False)
    flat = list(axes.flat)
    return fig, flat[:n_panels], flat[n_panels:]


def plot_metric_bars(summary, metrics, chance: dict, title: str):
    """One panel per metric (three a row), one row per method in its colour with its shuffled-EEG
    control as a pale hatched bar just below (``summary``: DataFrame, rows = methods in display order
    with controls named ``<method>, shuffled EEG``, columns ``<metric>_mean`` and ``<metric>_std``):
    the seed std as error bars, chance as a dashed line."""
    from matplotlib.patches import Patch

    methods = [m for m in summary.index if not m.endswith(", shuffled EEG")]
    fig, panels, spare = _panel_grid(len(metrics), len(methods))
    y = np.arange(len(methods))
    for i, (ax, metric) in enumerate(zip(panels, metrics)):
        for j, method in enumerate(methods):
            colour = e2i_color(method)
            std = np.nan_to_num(summary.loc[method, f"{metric}_std"])
            ax.barh(j - 0.18, summary.loc[method, f"{metric}_mean"], xerr=std, color=colour, height=0.36, capsize=2)
            control = f"{method}, shuffled EEG"
            if control in summary.index:
                ax.barh(j + 0.18, summary.loc[control, f"{metric}_mean"],
                        xerr=np.nan_to_num(summary.loc[control, f"{metric}_std"]), color=colour, alpha=0.3,
                        hatch="///", edgecolor=colour, height=0.36, capsize=2)
        if metric in chance:
            ax.axvline(chance[metric], color="k", ls="--", lw=1, zorder=3)
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=9)
        ax.set_xlabel("test score" + (f" (chance {chance[metric]:g})" if metric in chance else ""), fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_yticks(y, _wrapped(methods) if i % 3 == 0 else [], fontsize=7)
        ax.invert_yaxis()
    legend = [Patch(color="0.4", label="method (seed mean ± std)"),
              Patch(facecolor="0.4", alpha=0.3, hatch="///", edgecolor="0.4", label="its shuffled-EEG control"),
              _line("k", "--", "chance")]
    target = spare[0] if spare else panels[-1]
    if spare:
        for ax in spare:
            ax.set_axis_off()
    target.legend(handles=legend, fontsize=7, loc="center" if spare else "lower right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _line(colour: str, style: str, label: str):
    from matplotlib.lines import Line2D

    return Line2D([], [], color=colour, ls=style, lw=1, label=label)


def plot_ablations(table, chance: dict, title: str, metrics=("top1_10way", "two_way_features", "ssim"),
                   reference: str | None = None):
    """One panel per metric, one dot per ablation (``table``: DataFrame, rows = ablations, columns =
    metrics), joined to the full model's score (``reference``, in the structure-guided model's colour,
    dotted across the panel); the oracle (a bound, not from EEG) in the bound's colour, each metric's
    own chance level dashed."""
    import matplotlib.pyplot as plt

    rows = list(table.index)
    full, ablation, oracle = E2I_COLORS["structure-guided"], "0.35", E2I_COLORS["true-class prompt (bound)"]
    colours = [full if r == reference else oracle if "oracle" in r else ablation for r in rows]
    fig, axes = plt.subplots(1, len(metrics), figsize=(WIDTH, 0.36 * len(rows) + 1.9), sharey=True, squeeze=False)
    y = np.arange(len(rows))
    for ax, metric in zip(axes[0], metrics):
        values = table[metric].to_numpy()
        if reference in rows:  # each ablation as its difference from the full model
            ax.hlines(y, float(table.loc[reference, metric]), values, colors=colours, lw=2)
        ax.scatter(values, y, c=colours, s=36, zorder=3)
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        if metric in chance:
            ax.axvline(chance[metric], color="k", ls="--", lw=1)
            lo, hi = min(lo, chance[metric]), max(hi, chance[metric])
        if reference in rows:
            ax.axvline(float(table.loc[reference, metric]), color=full, ls=":", lw=1)
        pad = 0.15 * (hi - lo) + 0.01
        ax.set_xlim(max(0.0, lo - pad), hi + pad)  # the differences, not the distance from 0
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=9)
        ax.set_xlabel("test score" + (f"\n(dashed: chance {chance[metric]:g})" if metric in chance else ""), fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
    axes[0, 0].set_yticks(y, _wrapped(rows, 22), fontsize=7)
    axes[0, 0].invert_yaxis()
    fig.suptitle(f"{title}\nred: the full model; grey: an ablation; cyan: the oracle (a bound, not from EEG)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def plot_learning_curve(curve, table_steps: int):
    """DreamDiffusion's validation scores by fine-tuning step (``curve``: DataFrame indexed by step
    with ``eeg``, ``null``, ``gap`` and ``val_top1_10way``)."""
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_top1) = plt.subplots(1, 2, figsize=(WIDTH, 3.4))
    steps = curve.index.to_numpy()
    ax_loss.plot(steps, curve["eeg"], "o-", label="EEG context")
    ax_loss.plot(steps, curve["null"], "s--", label="null context (same noise)")
    ax_loss.set(xlabel="fine-tuning step", ylabel="validation loss (epsilon MSE)")
    ax_loss.set_title("What the EEG context tells\nthe generator", fontsize=9)
    ax_loss.legend(fontsize=7)
    ax_top1.plot(steps, curve["val_top1_10way"], "o-", color="C2")
    ax_top1.axhline(0.1, color="k", ls="--", lw=1, label="chance (0.1)")
    for ax in (ax_loss, ax_top1):
        ax.axvline(table_steps, color="grey", ls=":", lw=1, label=f"steps in the results table ({table_steps})")
    ax_top1.set(xlabel="fine-tuning step", ylabel="10-way top-1 (validation)")
    ax_top1.set_title("Reconstructions judged", fontsize=9)
    ax_top1.legend(fontsize=7)
    fig.suptitle("DreamDiffusion learning curve (first seed)", fontsize=10)
    fig.tight_layout()
    return fig
