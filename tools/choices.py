"""Design choices decided on validation (`make choices`, after `make run`): each candidate's validation
score, the one validation picks, and whether the parameter file agrees.

    python tools/choices.py RUN_DIR [PARAMS]

Reads what `make choices` wrote into RUN_DIR/choices/ (and the run's own fits for the default
candidate) and writes RUN_DIR/choices/choices.json, which RESULTS.md prints. No test score enters:

- ``channel_embed`` (notebook 40): the LFT on the run's cache, all labels, seeds of the run; the
  mean validation kappa over seeds, from RUN_DIR/choices/channel_embed_<name>/seed_*.
- ``e2i_mask_ratio`` (notebook 80): a linear probe's validation accuracy on each stage-A encoder
  (one per mask ratio, the same data, steps and seed), RUN_DIR/choices/e2i.
- ``e2i_both`` (notebook 85): the third method, EEG tokens plus both guidances, kept only where its
  validation top-1 (10-way, at the guidance validation picks) is above the structure-guided model's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from eegdm_utils.core.files import atomic_write_json, read_json  # noqa: E402
from eegdm_utils.eval.report import EEGDM  # noqa: E402
from run import run_info  # noqa: E402  (tools/run.py, beside this script)

EMBEDS = ("none", "channel", "mirror")


def lft_validation(folder: Path) -> list[float]:
    """The EEGDM LFT's best validation kappa with all labels, one per seed folder under ``folder``."""
    values = []
    for path in sorted(folder.glob("seed_*/metrics.json")):
        values += [r["val_kappa"] for r in read_json(path)["results"]
                   if r["method"] == EEGDM and r["label_fraction"] == 1.0]
    return values


def channel_embed_choice(run_dir: Path) -> dict | None:
    scores = {e: lft_validation(run_dir / "choices" / f"channel_embed_{e}") for e in EMBEDS}
    if any(not v for v in scores.values()):
        return None
    return {"notebook": "40", "criterion": "validation kappa of the LFT, all labels (mean over seeds)",
            "candidates": {e: {"score": float(np.mean(v)), "std": float(np.std(v)), "seeds": len(v)}
                           for e, v in scores.items()}}


def e2i_choices(run_dir: Path) -> dict:
    path = run_dir / "choices" / "e2i" / "metrics.json"
    if not path.exists():
        return {}
    metrics = read_json(path)
    out = {}
    probe = metrics.get("eeg_encoder_pretrain", {}).get("linear_probe_val_accuracy", {})
    ratios = {k.split("mask ")[1]: v for k, v in probe.items() if k.startswith("encoder, mask ")}
    if len(ratios) > 1:
        out["e2i_mask_ratio"] = {"notebook": "80", "criterion": "linear probe on the stage-A encoder, validation accuracy",
                                 "candidates": {r: {"score": v} for r, v in ratios.items()}}
    selected = metrics.get("eeg_to_image", {}).get("selected_on_validation", {})
    if "both" in selected and "structure-guided" in selected:
        best = {m: max(selected[m]["val_top1_10way"].values()) for m in ("structure-guided", "both")}
        out["e2i_both"] = {"notebook": "85", "criterion": "validation top-1 (10-way) at the guidance validation picks",
                           "candidates": {"false": {"score": best["structure-guided"]}, "true": {"score": best["both"]}}}
    return out


def decide(choice: dict, current) -> dict:
    """The candidate with the highest validation score (the first listed on a tie), and the parameter
    file's value beside it."""
    candidates = choice["candidates"]
    best = max(candidates, key=lambda k: candidates[k]["score"])
    return {**choice, "chosen": best, "in_params": _as_candidate(current), "agrees": _as_candidate(current) == best}


def _as_candidate(value) -> str:
    """A parameter's value spelled as the candidates are: numbers as %g ("0.25"), booleans and names in
    lower case ("false", "mirror")."""
    return f"{value:g}" if isinstance(value, float) else str(value).lower()


def main(run_dir: str, params_path: str = "params/default.yaml") -> dict:
    run_dir = Path(run_dir)
    params = yaml.safe_load((REPO / params_path).read_text())
    found = {}
    embed = channel_embed_choice(run_dir)
    if embed:
        found["channel_embed"] = embed
    found.update(e2i_choices(run_dir))
    if not found:
        raise SystemExit(f"{run_dir / 'choices'}: no candidates found; run `make choices` after `make run`")
    decided = {name: decide(c, params.get(name)) for name, c in found.items()}
    info = run_info("", "choices")
    cache = run_dir / "cache" / "meta.json"  # the backbone the LFT candidates were fitted on
    backbone = read_json(cache)["settings"]["backbone_sha256"] if cache.exists() else None
    atomic_write_json(run_dir / "choices" / "choices.json", {
        "choices": decided, "commit": info["commit"], "cpu": info["cpu"], "cores": info["cores"],
        "gathered": info["started"], "params": params_path, "backbone_sha256": backbone})
    for name, d in decided.items():
        scores = ", ".join(f"{k} {v['score']:.3f}" for k, v in d["candidates"].items())
        verdict = "agrees" if d["agrees"] else f"DISAGREES (it has {d['in_params']})"
        print(f"{name} (notebook {d['notebook']}; {d['criterion']}): {scores} -> {d['chosen']}; {params_path} {verdict}")
    return decided


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(*sys.argv[1:])
