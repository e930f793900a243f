"""Figures of notebooks 80 and 85. Each function returns the figure; the notebooks save
it with :func:`eegdm_utils.runtime.save_figure`.

Shape letters: B images, S samples per EEG, H height, W width, C channels, L samples.
"""

from __future__ import annotations

import numpy as np


def show_image(ax, image) -> None:
    """Draw one image in [-1, 1] without ticks: [H, W] or [1, H, W] in grey, [3, H, W] or [H, W, 3] in colour."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] in (1, 3):
        image = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    if image.ndim == 3:
        ax.imshow(np.clip((image + 1.0) / 2.0, 0.0, 1.0))
    else:
        ax.imshow(image, cmap="gray", vmin=-1, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_stimuli_and_erps(images, labels, eeg, trial_labels, channel_names, sfreq, channels=("O1", "P8", "Pz"),
                          per_class: int = 3):
    """Example stimuli of every class, and the class-average evoked response at a few channels."""
    import matplotlib.pyplot as plt

    n_classes = int(labels.max()) + 1
    fig = plt.figure(figsize=(12, 5.6))
    grid = fig.add_gridspec(per_class + 1, max(n_classes, 3 * len(channels)), height_ratios=[1] * per_class + [3.2])
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
        ax.set_title(f"{name}: class-average ERP", fontsize=9)
        ax.set_xlabel("time after image onset (ms)")
        if j == 0:
            ax.set_ylabel("uV")
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

    fig, axes = plt.subplots(len(channels), 1, figsize=(7.5, 1.3 * len(channels)), sharex=True)
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
    fig, axes = plt.subplots(rows, B, figsize=(0.62 * B + 1.6, 0.62 * rows + 0.4), squeeze=False)
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
    fig = plt.figure(figsize=(10, 4.4))
    outer = fig.add_gridspec(1, 2, width_ratios=[1.2, 0.9 * S / K], wspace=0.2, top=0.88)
    ax = fig.add_subplot(outer[0])
    ax.plot(history["step"], history["loss"], color="C0")
    ax.set(xlabel="optimizer step", ylabel="epsilon MSE (training batches)",
           title="Stage B pretraining on images with class prompts")
    ax.grid(alpha=0.3)
    inner = outer[1].subgridspec(K, S, wspace=0.08, hspace=0.08)
    for k in range(K):
        for j in range(S):
            cell = fig.add_subplot(inner[k, j])
            show_image(cell, samples[k][j])
            if j == 0:
                name = class_names[k] if class_names is not None else str(k)
                cell.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    box = outer[1].get_position(fig)
    fig.text(box.x0 - 0.035, (box.y0 + box.y1) / 2, "class prompt", rotation=90, va="center", ha="center", fontsize=9)
    fig.text((box.x0 + box.x1) / 2, 0.93, f"{S} samples per class prompt (rows), guidance {guidance_scale:g}:\n"
             f"the judge calls {judged:.0%} of them their prompt's class", ha="center", fontsize=10)
    return fig


METRIC_LABELS = {"top1_2way": "2-way top-1", "top1_5way": "5-way top-1", "top1_10way": "10-way top-1 (judge)",
                 "top1_10way_judged": "10-way top-1 (judge's truth)", "two_way_features": "2-way identification",
                 "two_way_within_class": "2-way within class", "two_way_embedding": "2-way (embedder features)",
                 "pixcorr": "PixCorr", "ssim": "SSIM"}


def plot_metric_bars(summary, metrics, chance: dict, title: str):
    """One panel per metric, methods as horizontal bars (``summary``: DataFrame, rows = methods in
    display order, columns ``<metric>_mean`` and ``<metric>_std``): the seed std as error bars, chance
    as a dashed line, controls (names with "shuffled" or "unconditional") in grey, bounds in green."""
    import matplotlib.pyplot as plt

    methods = list(summary.index)
    colours = ["0.65" if ("shuffled" in m or "unconditional" in m) else "C2" if "bound" in m else "C0" for m in methods]
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.9 * len(metrics) + 2.6, 0.34 * len(methods) + 1.6),
                             sharey=True, squeeze=False)
    y = np.arange(len(methods))
    for ax, metric in zip(axes[0], metrics):
        means = summary[f"{metric}_mean"].to_numpy()
        stds = summary[f"{metric}_std"].fillna(0).to_numpy()
        ax.barh(y, means, xerr=stds, color=colours, capsize=2, height=0.7)
        if metric in chance:
            ax.axvline(chance[metric], color="k", ls="--", lw=1)
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=10)
        ax.set_xlabel("test score" + (f" (chance {chance[metric]:g})" if metric in chance else ""), fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
    axes[0, 0].set_yticks(y, methods, fontsize=8)
    axes[0, 0].invert_yaxis()
    fig.suptitle(title + "; blue: methods and baselines, grey: controls, green: bound", fontsize=10)
    fig.tight_layout()
    return fig


def plot_ablations(table, chance: dict, title: str, metrics=("top1_10way", "two_way_features", "ssim"),
                   reference: str | None = None):
    """One panel per metric, one dot per ablation (``table``: DataFrame, rows = ablations, columns =
    metrics), joined to the full model's score (``reference``, blue, dotted across the panel); the
    oracle (a bound, not from EEG) in green, each metric's own chance level dashed."""
    import matplotlib.pyplot as plt

    rows = list(table.index)
    colours = ["C0" if r == reference else "C2" if "oracle" in r else "C1" for r in rows]
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.9 * len(metrics) + 2.8, 0.34 * len(rows) + 1.7),
                             sharey=True, squeeze=False)
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
            ax.axvline(float(table.loc[reference, metric]), color="C0", ls=":", lw=1)
        pad = 0.15 * (hi - lo) + 0.01
        ax.set_xlim(max(0.0, lo - pad), hi + pad)  # the differences, not the distance from 0
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=10)
        ax.set_xlabel("test score" + (f" (dashed: chance {chance[metric]:g})" if metric in chance else ""), fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
    axes[0, 0].set_yticks(y, rows, fontsize=8)
    axes[0, 0].invert_yaxis()
    fig.suptitle(f"{title}: blue the full model, orange an ablation, green the oracle (not from EEG)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_learning_curve(curve, table_steps: int):
    """DreamDiffusion's validation scores by fine-tuning step (``curve``: DataFrame indexed by step
    with ``eeg``, ``null``, ``gap`` and ``val_top1_10way``)."""
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_top1) = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = curve.index.to_numpy()
    ax_loss.plot(steps, curve["eeg"], "o-", label="EEG context")
    ax_loss.plot(steps, curve["null"], "s--", label="null context (same noise)")
    ax_loss.set(xlabel="fine-tuning step", ylabel="validation diffusion loss (epsilon MSE)",
                title="What the EEG context tells the generator")
    ax_loss.legend(fontsize=8)
    ax_top1.plot(steps, curve["val_top1_10way"], "o-", color="C2")
    ax_top1.axhline(0.1, color="k", ls="--", lw=1, label="chance (0.1)")
    for ax in (ax_loss, ax_top1):
        ax.axvline(table_steps, color="grey", ls=":", lw=1, label=f"steps in the results table ({table_steps})")
    ax_top1.set(xlabel="fine-tuning step", ylabel="10-way top-1 (validation)", title="Reconstructions judged")
    ax_top1.legend(fontsize=8)
    fig.suptitle("DreamDiffusion learning curve (first seed)", fontsize=10)
    fig.tight_layout()
    return fig
