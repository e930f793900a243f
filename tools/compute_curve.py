"""Linear-probe kappa against pretraining compute, from `make compute-curve` (after `make run`).

    python tools/compute_curve.py RUN_DIR [FIGURES_DIR]

Reads RUN_DIR/controls/metrics.json (the untrained probe is 0 steps; the pretrained probe is
RUN_DIR's own number of steps) and RUN_DIR/compute/steps_<N>/controls/metrics.json; prints the
table and writes FIGURES_DIR/45_controls/compute_curve.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from eegdm_utils import figures
from eegdm_utils.report import PROBE, PROBE_UNTRAINED
from eegdm_utils.runtime import read_json, save_figure


def probe_rows(run: Path, method: str, steps: int) -> list[dict]:
    rows = [r for r in read_json(run / "controls" / "metrics.json")["results"] if r["method"] == method]
    return [{"pretraining steps": steps, "labels": f"{r['label_fraction']:.0%}", "val kappa": r["val_kappa"],
             "test kappa": r["kappa"], "test bal. acc": r["balanced_accuracy"]} for r in rows]


def main(run: Path, figures_dir: Path) -> None:
    own_steps = read_json(run / "metrics.json")["pretrain"]["steps"]
    rows = probe_rows(run, PROBE_UNTRAINED, 0) + probe_rows(run, PROBE, own_steps)
    for folder in sorted((run / "compute").glob("steps_*")):
        if (folder / "controls" / "metrics.json").exists():
            rows += probe_rows(folder, PROBE, int(folder.name.split("_")[1]))
    table = pd.DataFrame(rows).sort_values(["labels", "pretraining steps"], ascending=[False, True])
    print((table.set_index(["labels", "pretraining steps"]) * 100).round(2).to_string())
    figures.style()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, (labels, part) in zip(axes, table.groupby("labels", sort=False)):
        x = part["pretraining steps"].clip(lower=own_steps / 16)  # 0 steps drawn at the left edge
        ax.plot(x, 100 * part["test kappa"], "o-", color="C3", label="test kappa")
        ax.plot(x, 100 * part["val kappa"], "o--", color="C3", alpha=0.5, label="validation kappa")
        ax.plot(x, 100 * part["test bal. acc"], "s-", color="C0", label="test balanced accuracy")
        ax.set_xscale("log")
        ticks = sorted(set(x))
        ax.set_xticks(ticks, ["0 (untrained)" if t == own_steps / 16 else f"{int(t)}" for t in ticks])
        ax.axvline(own_steps, color="k", lw=0.8, ls=":", label=f"make run ({own_steps} steps)")
        ax.set_xlabel("pretraining steps (batches of single-channel windows)")
        ax.set_title(f"{labels} of the training labels", fontsize=9)
    axes[0].set_ylabel("linear probe on the cache, ×100")
    axes[1].legend(fontsize=7)
    fig.suptitle("What pretraining adds to the cache: a linear probe against pretraining compute", y=1.02)
    fig.tight_layout()
    print(f"wrote {save_figure(fig, 'compute_curve', figures_dir / '45_controls')}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else Path("figures"))
