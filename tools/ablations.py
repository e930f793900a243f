"""Gather the ablation sweep (notebook 60, `make ablations`) into one table and its figures.

    python tools/ablations.py RUN_DIR [FIGURES_DIR]

Reads RUN_DIR/ablations/<variant>/seed_<N>.json, writes RUN_DIR/ablations/results.csv (one row per
variant, seed and label fraction: kappa, balanced accuracy, weighted F1) and prints mean ± population
std x100 per variant beside the paper's value and the run time of each variant. The reference rows:
the full model (variant `full`), the band-power pipeline (notebook 45) and the untrained-backbone
LFT (notebook 40, its seeds), from the same RUN_DIR. One figure per paper table in
FIGURES_DIR/60_ablations/: test kappa per variant (bars: mean over seeds, dots: seeds), with the
full model, the controls and chance as lines and the paper's value as a diamond.
"""

from __future__ import annotations

import sys
from pathlib import Path

from eegdm_utils.core.files import atomic_write_json, read_json
from eegdm_utils.eval import figures
from eegdm_utils.eval.ablation_report import (difference_intervals, gather, paper_agreement, plot_agreement, plot_table,
                                             references, summary)
from eegdm_utils.eval.ablations import VARIANTS
from run import run_info  # tools/run.py, beside this script


def agreement_sentence(agreement, rho: float) -> str:
    """How many of the paper's variants fall below our full model (the whole interval over test subjects
    under zero), against the paper's count, and Spearman's rho: one sentence from the numbers."""
    assessed = agreement.dropna(subset=["high"])
    return (f"{int((assessed['high'] < 0).sum())} of {len(assessed)} with an interval below the full model (the "
            f"whole 95% interval over test subjects under zero; paper: {int((agreement['paper'] < 0).sum())} of "
            f"{len(agreement)} below); Spearman's rho of the changes {rho:.2f}")


def main(run_dir: str, figures_dir: str = "figures") -> None:
    run_dir = Path(run_dir)
    results, seconds = gather(run_dir)
    results.to_csv(run_dir / "ablations" / "results.csv", index=False)
    # the provenance RESULTS.md prints beside the table: the commit the sweep's notebooks ran at (`make ablations`
    # runs them and gathers in one checkout: this one, unless no notebook ran since the last gathering, whose
    # commit stays), the CPU
    info, path = run_info("", "ablations"), run_dir / "ablations" / "sweep_info.json"
    runs = int(len(results[["variant", "seed"]].drop_duplicates()))
    previous = read_json(path) if path.exists() else {}
    commit = previous["commit"] if previous.get("runs") == runs else info["commit"]
    atomic_write_json(path, {
        "commit": commit, "runs": runs, "dirty": info["dirty"], "cpu": info["cpu"], "cores": info["cores"],
        "gathered": info["started"], "minutes": round(sum(seconds.values()) / 60, 1),
        "variants": int(results["variant"].nunique()), "seeds": sorted(int(s) for s in results["seed"].unique())})
    intervals = difference_intervals(run_dir)
    table = summary(results, seconds, intervals)
    print(table.to_string(index=False))
    refs = references(run_dir)
    if refs:
        print("reference rows (test kappa x100): " + "; ".join(f"{m} {f:.0%}: {k:.1f}" for (m, f), k in refs.items()))
    agreement, rho = paper_agreement(results, intervals) if "full" in set(results["variant"]) else (None, None)
    if agreement is not None and len(agreement):
        print("\nchange of test kappa from the full model, all labels (x100): ours (seed std) [95% interval over "
              "test subjects] | paper")
        for _, r in agreement.iterrows():
            print(f"  {r['variant']:16s} {r['ours']:+6.1f} ({r['seed std']:.1f}) [{r['low']:+.1f}, {r['high']:+.1f}] "
                  f"| {r['paper']:+6.1f}")
        print("  " + agreement_sentence(agreement, rho))
    print(f"total {sum(seconds.values()) / 60:.1f} minutes of notebook 60; wrote {run_dir / 'ablations' / 'results.csv'}")
    figures.style()
    fig_dir = Path(figures_dir) / "60_ablations"
    if agreement is not None and len(agreement) >= 3:
        print("figure:", plot_agreement(agreement, rho, fig_dir))
    for t in dict.fromkeys(spec.table for v, spec in VARIANTS.items() if v != "full"):
        if set(results[results["table"] == t]["variant"]):
            print("figure:", plot_table(results, t, refs, fig_dir))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(*sys.argv[1:])
