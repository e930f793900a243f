"""Probe and LFT kappa against pretraining compute and backbone size, after `make run` and
`make compute-curve` / `make backbone-curve` / `make reference-recipe`.

    python tools/compute_curve.py RUN_DIR [FIGURES_DIR]

Compute curve: the probes of RUN_DIR/controls/metrics.json (the untrained probe is 0 steps; the
pretrained probe is RUN_DIR's own number of steps) and of RUN_DIR/compute/steps_<N>/, and the LFT
of seed 0 on each cache (RUN_DIR/lft/seed_0 and RUN_DIR/compute/steps_<N>/lft/seed_0).
Backbone curve: the same rows for RUN_DIR/backbone/d<D>_l<L>/, each with its own untrained control.
Reference recipe: RUN_DIR/recipe/lft/seed_0 (the reference's LFT settings on RUN_DIR's cache).
Prints the tables; writes FIGURES_DIR/45_controls/compute_curve.png and backbone_curve.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from eegdm_utils.core.figure_output import save_figure
from eegdm_utils.core.files import read_json
from eegdm_utils.eval import figures
from eegdm_utils.eval.report import EEGDM, PROBE, PROBE_UNTRAINED, UNTRAINED

ROW = ("val kappa", "test kappa", "test bal. acc")


def rows_of(path: Path, method: str, **extra) -> list[dict]:
    """The rows of one metrics.json for ``method`` (nothing if the file is absent)."""
    if not path.exists():
        return []
    return [{**extra, "labels": f"{r['label_fraction']:.0%}", "val kappa": r["val_kappa"], "test kappa": r["kappa"],
             "test bal. acc": r["balanced_accuracy"]} for r in read_json(path)["results"] if r["method"] == method]


def point(run: Path, pretrained: bool, **extra) -> list[dict]:
    """Probe and LFT (seed 0) rows of one run folder, for its pretrained or its untrained backbone."""
    probe, lft = (PROBE, EEGDM) if pretrained else (PROBE_UNTRAINED, UNTRAINED)
    return (rows_of(run / "controls" / "metrics.json", probe, readout="linear probe", **extra)
            + rows_of(run / "lft" / "seed_0" / "metrics.json", lft, readout="LFT (seed 0)", **extra))


def compute_table(run: Path) -> pd.DataFrame:
    own = read_json(run / "metrics.json")["pretrain"]["steps"]
    rows = point(run, False, steps=0) + point(run, True, steps=own)
    for folder in sorted((run / "compute").glob("steps_*")):
        rows += point(folder, True, steps=int(folder.name.split("_")[1]))
    return pd.DataFrame(rows).sort_values(["readout", "labels", "steps"], ascending=[True, False, True])


def backbone_table(run: Path) -> pd.DataFrame:
    def size(folder: Path) -> dict:
        m = read_json(folder / "metrics.json")["pretrain"]
        return {"params": m["n_params"], "val loss": m["final_val_loss"]}

    shape = read_json(run / "lft" / "seed_0" / "metrics.json")["lft_config"]
    folders = [(f"d{shape['d_model']}_l{shape['n_layer']}", run)] + [(f.name, f) for f in sorted((run / "backbone").glob("d*_l*"))
                                                                  if (f / "metrics.json").exists()]
    rows = []
    for name, folder in folders:
        for pretrained in (True, False):
            rows += point(folder, pretrained, backbone=name, backbone_pretrained=pretrained, **size(folder))
    return pd.DataFrame(rows)


LABELS = ("100%", "10%")


def panels():
    """One panel per label fraction, sharing the kappa axis."""
    fig, axes = plt.subplots(1, len(LABELS), figsize=(7.0, 3.6), sharey=True)
    for ax, labels in zip(axes, LABELS):
        ax.set_title(f"{labels} of the training labels", fontsize=9)
    return fig, axes


def finish(fig, axes, ylabel: str, title: str, name: str, figures_dir: Path) -> None:
    axes[0].set_ylabel(ylabel)
    axes[-1].legend(fontsize=7)
    fig.suptitle(title, y=1.02)
    fig.tight_layout()
    print(f"wrote {save_figure(fig, name, figures_dir / '45_controls')}")


def plot_compute(table: pd.DataFrame, own: int, figures_dir: Path) -> None:
    fig, axes = panels()
    for ax, labels in zip(axes, LABELS):
        for (readout, color) in (("linear probe", "C3"), ("LFT (seed 0)", "C0")):
            part = table[(table.readout == readout) & (table.labels == labels)]
            if part.empty:
                continue
            x = part["steps"].clip(lower=own / 16)  # 0 steps drawn at the left edge
            ax.plot(x, 100 * part["test kappa"], "o-", color=color, label=f"{readout}, test")
            ax.plot(x, 100 * part["val kappa"], "o--", color=color, alpha=0.5, label=f"{readout}, validation")
        ax.set_xscale("log")
        ticks = sorted(set(table["steps"].clip(lower=own / 16)))
        ax.set_xticks(ticks, ["0 (untrained)" if t == own / 16 else f"{int(t)}" for t in ticks])
        ax.axvline(own, color="k", lw=0.8, ls=":", label=f"make run ({own} steps)")
        ax.set_xlabel("pretraining steps (batches of 32 single-channel windows)")
    finish(fig, axes, "Cohen's kappa ×100 (chance 0)",
           "What pretraining adds: readouts of the cache against pretraining compute", "compute_curve", figures_dir)


def plot_backbones(table: pd.DataFrame, steps: int, figures_dir: Path) -> None:
    order = table.drop_duplicates("backbone").sort_values("params")["backbone"].tolist()
    fig, axes = panels()
    styles = {("linear probe", True): ("C3", "-", "probe, pretrained"), ("linear probe", False): ("C3", ":", "probe, untrained"),
              ("LFT (seed 0)", True): ("C0", "-", "LFT, pretrained"), ("LFT (seed 0)", False): ("C0", ":", "LFT, untrained")}
    for ax, labels in zip(axes, LABELS):
        for (readout, pretrained), (color, ls, label) in styles.items():
            part = table[(table.readout == readout) & (table.backbone_pretrained == pretrained) & (table.labels == labels)]
            part = part.set_index("backbone").reindex(order)
            ax.plot(range(len(order)), 100 * part["test kappa"], marker="o", color=color, ls=ls, label=label)
        params = table.drop_duplicates("backbone").set_index("backbone").loc[order, "params"]
        names = [b[1:].split("_l") for b in order]  # "d32_l4" -> ["32", "4"]
        ax.set_xticks(range(len(order)), [f"width {w} × {n} layers\n{p / 1e3:.0f}k params"
                                          for (w, n), p in zip(names, params)], fontsize=7)
        ax.set_xlabel(f"backbone ({steps} pretraining steps each)")
    finish(fig, axes, "test Cohen's kappa ×100 (chance 0)",
           "Backbone width and depth: probe and LFT on each backbone's cache, pretrained vs untrained",
           "backbone_curve", figures_dir)


def main(run: Path, figures_dir: Path) -> None:
    figures.style()
    own = read_json(run / "metrics.json")["pretrain"]["steps"]
    table = compute_table(run)
    print("Pretraining compute (x100):")
    print((table.set_index(["readout", "labels", "steps"])[list(ROW)] * 100).round(2).to_string())
    plot_compute(table, own, figures_dir)
    if (run / "backbone").exists():
        table = backbone_table(run)
        print("\nBackbone width x depth (x100):")
        shown = table.set_index(["readout", "labels", "backbone", "backbone_pretrained"])[list(ROW)] * 100
        print(shown.round(2).to_string())
        plot_backbones(table, own, figures_dir)
    recipe = run / "recipe"
    if (recipe / "lft" / "seed_0" / "metrics.json").exists():
        rows = point(recipe, True, backbone="pretrained") + point(recipe, False, backbone="untrained")
        rows = [r for r in rows if r["readout"].startswith("LFT")]
        print("\nThe reference's LFT recipe on this cache, seed 0 (x100):")
        print((pd.DataFrame(rows).set_index(["labels", "backbone"])[list(ROW)] * 100).round(2).to_string())


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else Path("figures"))
