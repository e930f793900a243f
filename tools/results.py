"""Write RESULTS.md from a run's metrics: results are generated, never typed.

    python tools/results.py RUN_DIR              # RUN_DIR/RESULTS.md (+ RUN_DIR/results.json)
    python tools/results.py RUN_DIR --publish    # also results/<tier>/; for `make run` RESULTS.md and the README's blocks
    python tools/results.py RUN_DIR --check      # fail when RESULTS.md or the README's blocks disagree with RUN_DIR
    python tools/results.py --check-committed    # fail when they differ from the committed results/run/

Every table is computed from the files the notebooks wrote (``metrics.json`` of notebooks 10 to 95,
``timings.json`` and ``run_info.json`` of tools/run.py), with the functions notebook 50 uses, and
rendered with the commit, CPU and date of that run. A section whose notebook did not run is left
out and named at the end; so is every sweep (``make ablations``, ``make compute-curve`` ...) that
has not written its results into this run folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))  # compute_curve, for the sweeps' tables

from eegdm_utils.core.files import atomic_write_bytes
from eegdm_utils.eval.paper import PAPER_TUEV
from eegdm_utils.eval.real_eeg import fold_table, route_claims
from eegdm_utils.eval.report import (EEGDM, FOUNDATION_METHODS, METRICS, REQUIRED_METHODS, claim_intervals,
                                     collect_control_results, collect_foundation_results, collect_seed_results,
                                     recall_table, recorded_test_lines, summary_table, target_checks)

HEADLINE_START = "<!-- results:headline (tools/results.py writes this block) -->"
METRIC_NAMES = {"kappa": "kappa", "balanced_accuracy": "balanced accuracy", "weighted_f1": "weighted F1"}

# One line per figure: what to look for. Figures that a run did not make are left out.
FIGURES = {
    "10_data_prep/class_examples.png": "One 5-s window per class on the TCP montage, in µV: spikes, periodic discharges, eye movements, artefacts, background.",
    "10_data_prep/class_psd.png": "Power spectra per class: the classes overlap in spectrum, so band powers alone cannot separate them all.",
    "20_pretrain_ssmdp/loss_curves.png": "The SSMDP's v-prediction loss falls and flattens; validation follows training (no overfitting).",
    "20_pretrain_ssmdp/denoising_error.png": "At every noise level the trained denoiser's x0 error is below the untrained network's.",
    "30_cache_latents/latent_activity.png": "The cached gate std per layer and channel for one window of each class: the LFT's input.",
    "45_controls/where_the_information_is.png": "Probe kappa per layer and per 1-s pool: the event is in the cache, most of it in the event's own second.",
    "50_report/eegdm_vs_baseline.png": "Every method's test metrics (bars: mean, dots: seeds, dashed: chance); compare EEGDM with its untrained control and band powers.",
    "50_report/confusion.png": "Where EEGDM errs, pooled over seeds: read the rare classes' rows (SPSW, EYEM) against band powers'.",
    "70_generation/generated_vs_real.png": "Generated 22-channel EEG beside real recordings on one µV scale.",
    "70_generation/psd_by_group.png": "Spectra of generated and real EEG per channel group: the trained model follows the real shape, the untrained one does not.",
    "80_eeg_encoder_pretrain/block_design_pitfall.png": "A block-design recording decodes the class from a slow drift alone; leave-block-out evaluation exposes it.",
    "80_eeg_encoder_pretrain/masked_reconstruction.png": "Stage A: a validation trial with the run's share of its tokens hidden (e2i_mask_ratio), and the encoder's reconstruction.",
    "85_eeg_to_image/reconstructions.png": "Test stimuli and reconstructions from single EEG trials, per method, beside the shuffled-EEG control.",
    "85_eeg_to_image/metrics.png": "Each method's bar against the pale hatched bar of its shuffled-EEG control and the dashed chance line: only a gap beyond the error bars is information from the EEG.",
    "85_eeg_to_image/dreamdiffusion_learning_curve.png": "DreamDiffusion's validation loss with and without the EEG context over fine-tuning: the EEG tokens add nothing the generator uses.",
    "scale_curves/labelled_data.png": "Each method's test metrics against the labelled training windows, the backbone fixed: where the LFT's line meets the probe's or crosses band powers beyond the bars is the answer to whether its gap is a small-data effect.",
    "scale_curves/unlabelled_data.png": "The LFT and the probe of its cache against the subjects the backbone was pretrained on (never labelled), one line per step count, beside the untrained control and band powers of the same labelled subjects.",
    "60_ablations/agreement_with_paper.png": "Each ablation's change of test kappa from the full model, ours against the paper's: agreement would put the points on the dashed line, in the paper's order (Spearman's rho in the title).",
    "90_foundation_baseline/tokens.png": "Min-max tokens keep a channel's shape and lose its amplitude; amplitude tokens keep both within their range.",
    "90_foundation_baseline/comparison.png": "EEGFoundation's rows beside EEGDM and the baselines on test kappa.",
    "95_real_eeg/eegmat_per_subject.png": "Real EEG, rest vs mental arithmetic: accuracy per test subject; the spread between subjects dominates.",
    "95_real_eeg/chbmit_per_subject.png": "The CHB-MIT excerpt, seizure vs not: one patient, split into time blocks (within-recording separability).",
}
SWEEPS = {
    "ablations/results.csv": "make ablations (notebook 60: the paper's ablation tables)",
    "compute": "make compute-curve (more or less pretraining)",
    "backbone": "make backbone-curve (other backbone sizes)",
    "recipe": "make reference-recipe (the reference's LFT settings)",
    "choices/choices.json": "make choices (design choices decided on validation)",
    "scale/summary.json": "make scale-curves (label- and pretraining-data scaling curves)",
}


def read(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def table(caption: str, columns: list[str], rows: list[list]) -> dict:
    return {"caption": caption, "columns": columns, "rows": [[str(c) for c in r] for r in rows]}


# --- sections: each reads one notebook's files and returns a section, or None when it did not run ---

def classification(run: Path) -> dict | None:
    if not (run / "lft").exists() or not (run / "controls" / "metrics.json").exists():
        return None
    import pandas as pd

    foundation = collect_foundation_results(run)
    results = pd.concat([collect_seed_results(run / "lft"), collect_control_results(run),
                         *([] if foundation is None else [foundation])], ignore_index=True)
    order = {m: i for i, m in enumerate(REQUIRED_METHODS + FOUNDATION_METHODS)}
    results = results.sort_values(["label_fraction", "method"], key=lambda c: -c if c.name == "label_fraction"
                                  else c.map(order), kind="stable").reset_index(drop=True)
    fractions = sorted(set(results["label_fraction"]), reverse=True)
    summary = summary_table(results)
    fit_once = set(results.loc[results.seed.isna(), "method"])
    class_names = read(run / "controls" / "metrics.json")["class_names"]
    seeds = sorted(results["seed"].dropna().astype(int).unique().tolist())
    main = table(f"Test metrics ×100, mean ± population std over seed{'s' if len(seeds) > 1 else ''} "
                 f"{', '.join(map(str, seeds))} (readouts: one fit). "
                 f"Chance: kappa 0, balanced accuracy {100 / len(class_names):.2f}.",
                 ["method", "labels", "seeds", *METRIC_NAMES.values()],
                 [[r.method, r.labels, "fit once" if r.method in fit_once else r.seeds,
                   *(f"{getattr(r, m + '_mean'):.2f}" if r.method in fit_once else getattr(r, m) for m in METRICS)]
                  for r in summary.itertuples()])
    recalls = recall_table(results, class_names)
    support = np.sum(results[results.method == EEGDM]["confusion"].iloc[0], axis=1)
    recall = table("Per-class test recall, mean over seeds. Test lines per class: "
                   + ", ".join(f"{c} {n}" for c, n in zip(class_names, support.tolist())) + ".",
                   ["method", "labels", *class_names],
                   [[r["method"], r["labels"], *(f"{r[c]:.2f}" for c in class_names)] for _, r in recalls.iterrows()])
    tables = [main, recall]
    if set(REQUIRED_METHODS) <= set(results["method"]):
        intervals = claim_intervals(results, recorded_test_lines(run), len(class_names), fractions)
        checks = target_checks(summary, recalls, fractions, intervals)
        held = int((checks["holds"] == True).sum())  # noqa: E712 ("not assessed" is neither)
        subjects = next(iter(intervals.values()))["n_subjects"] if intervals else 0
        tables.append(table(f"The claims notebook 50 checks, decided from the rows above: {held} of {len(checks)} hold. "
                            "A comparison holds when the 95% interval of the difference (×100; a paired bootstrap over "
                            f"the {subjects} test subjects, mean over seeds) lies above zero and the difference exceeds "
                            "the larger seed std; fewer than 3 seeds: not assessed.",
                            ["labels", "claim", "difference (seed std)", "95% interval", "holds"],
                            [[c.labels, c.claim, c.measured, c.interval, c.holds] for c in checks.itertuples()]))
        findings = findings_sentence(checks, subjects)
    tables.append(table("The paper's TUEV numbers (real recordings, full-size models) for scale, not for comparison: "
                        "the simulated corpus is not TUEV.", ["method (paper, TUEV)", *METRIC_NAMES.values()],
                        [[name, *(f"{v:.2f}" for v in values)] for name, values in PAPER_TUEV.items()]))
    return {"title": "Classification: EEGDM beside its baselines and controls (notebooks 40, 45, 50, 90)",
            "tables": tables, "figures": ["50_report/eegdm_vs_baseline.png", "50_report/confusion.png"],
            "headline": main, **({"findings": findings} if set(REQUIRED_METHODS) <= set(results["method"]) else {})}


def findings_sentence(checks, subjects: int) -> str:
    """What notebook 50's claims say, from their numbers: those that hold, and each comparison whose whole
    95% interval lies below zero (a finding against the claim), with its labels, difference and interval."""
    held, against = [], []
    for r in checks.itertuples():
        item = f"{r.claim}, {r.labels} labels: {r.difference:+.2f} {r.interval}"
        if r.holds is True:
            held.append(item)
        elif r.high < 0:  # NaN (no interval) is never below zero
            against.append(item)
    text = (f"{len(held)} of {len(checks)} of notebook 50's claims hold (95% interval over the {subjects} test subjects "
            "above zero and the difference beyond the seed std)" + (": " + "; ".join(held) if held else "") + ".")
    if against:
        text += " Against them beyond that interval: " + "; ".join(against) + "."
    return text


def pipeline(run: Path) -> dict | None:
    m = read(run / "metrics.json") or {}
    if "data_prep" not in m or "pretrain" not in m:
        return None
    d, p = m["data_prep"], m["pretrain"]
    splits = ("train", "val", "test")
    rows = [["annotation lines (train / validation / test)", " / ".join(f"{d['n_faithful'][k]:,}" for k in splits)],
            ["single-channel pretraining windows (train / validation)", " / ".join(f"{d['n_pretrain'][k]:,}" for k in splits[:2])],
            ["SSMDP parameters", f"{p['n_params']:,}"], ["pretraining steps", f"{p['steps']:,}"],
            ["validation v-loss (EMA), end of pretraining", f"{p['final_val_loss']:.4f}"],
            ["x0 error, trained / untrained network", f"{p['x0_mse_trained']:.4f} / {p['x0_mse_untrained']:.4f}"]]
    if "cache" in m:
        rows.append(["cache: largest float16 error of a latent", f"{m['cache']['float16_max_abs_error']:.1e}"])
    return {"title": "The data and the backbone (notebooks 10, 20, 30)",
            "tables": [table(f"The corpus ({d['source']}, {d['n_recordings']} recordings) and the pretrained backbone.", ["", "this run"], rows)],
            "figures": ["10_data_prep/class_examples.png", "10_data_prep/class_psd.png", "20_pretrain_ssmdp/loss_curves.png",
                        "20_pretrain_ssmdp/denoising_error.png", "30_cache_latents/latent_activity.png"]}


def diagnostics(run: Path) -> dict | None:
    controls = read(run / "controls" / "metrics.json")
    if not controls or not controls.get("where"):
        return None
    cells: dict[tuple, dict] = {}
    for w in controls["where"]:
        cells.setdefault((w["axis"], w["index"]), {})[w["backbone"]] = w
    backbones = [b for b in ("pretrained", "untrained") if any(b in c for c in cells.values())]
    rows = [[f"{axis} {index}", *(f"{100 * c[b]['val_kappa']:.1f} / {100 * c[b]['kappa']:.1f}" if b in c else ""
                                  for b in backbones)] for (axis, index), c in cells.items()]
    tables = [table("Where the event is in the cache: a linear probe on one backbone layer or one 1-s pool of the "
                    f"cache (pool {controls['event_pool']} holds the event), all training labels; validation / test "
                    "kappa ×100.", ["probe on", *(f"{b} backbone" for b in backbones)], rows)]
    if controls.get("variants"):
        tables.append(table("Which latent of the pretrained backbone: the same probe on the gate or the filter, its std or "
                            "its mean over each pool (all labels; validation / test kappa ×100).",
                            ["latent", "validation / test kappa"],
                            [[f"{v['query']} {v['reduction']}", f"{100 * v['val_kappa']:.1f} / {100 * v['kappa']:.1f}"]
                             for v in controls["variants"]]))
    return {"title": "Where the information is (notebook 45)", "tables": tables,
            "figures": ["45_controls/where_the_information_is.png"]}


def foundation(run: Path) -> dict | None:
    metrics = read(run / "foundation" / "metrics.json")
    if not metrics:
        return None
    pre = metrics["pretraining"]
    rows = [[name, f"{info['parameters']:,}", f"{info['final_val_acc']:.3f}", f"{info['unigram_accuracy']:.3f}",
             f"{info['seconds']:.0f}"] for name, info in pre.items()]
    readouts = [[name, f"{100 * r['val_kappa']:.1f}", f"{100 * r['kappa']:.1f}"] for name, r in metrics["readouts"].items()]
    return {"title": "EEGFoundation: what its encoder learns (notebook 90)",
            "tables": [table("Masked-token pretraining: validation accuracy against always predicting the most frequent token.",
                             ["tokenizer", "encoder parameters", "masked-token accuracy", "unigram baseline", "seconds"], rows),
                       table("The same logistic readout on EEGFoundation's inputs and embeddings (kappa ×100).",
                             ["readout on", "validation kappa", "test kappa"], readouts)],
            "figures": ["90_foundation_baseline/tokens.png", "90_foundation_baseline/comparison.png"]}


def real_eeg(run: Path) -> dict | None:
    folders = sorted((p.parent for p in (run / "real").glob("*/metrics.json")), key=lambda f: f.stat().st_mtime)  # run order
    if not folders:
        return None
    import pandas as pd

    tables, figures = [], []
    for folder in folders:
        m = read(folder / "metrics.json")
        folds = pd.DataFrame(m["results"])
        n_classes = len(m["class_names"])
        rows = [[method, r.bacc, r.auroc, r.kappa, r.collapsed] for method, r in fold_table(folds).iterrows()]
        windows = sum(sum(c.values()) for c in m["windows_per_subject_and_class"].values())
        tables.append(table(f"{folder.name} ({', '.join(m['class_names'])}; {m['protocol']}; {windows} windows): test ×100, "
                            f"mean ± std over folds; chance: balanced accuracy {100 / n_classes:.1f}, AUROC 50, kappa 0; "
                            "collapsed: folds where the model predicted one class for every window.",
                            ["method", "balanced accuracy", "AUROC", "kappa", "collapsed"], rows))
        claims = route_claims(m["results"], n_classes)
        if claims:
            tables.append(table(f"{folder.name}: a claim holds where the 95% interval of the difference (×100; every "
                                "fold's test windows pooled, a paired bootstrap over the test subjects) lies above zero; "
                                "a run without line predictions, or one patient split in time, is not assessed.",
                                ["claim", "difference", "95% interval", "holds"],
                                [[c["claim"], "" if c["difference"] is None else f"{c['difference']:+.1f}",
                                  "" if c["low"] is None else f"[{c['low']:+.1f}, {c['high']:+.1f}]", c["holds"]]
                                 for c in claims]))
        figures.append(f"95_real_eeg/{folder.name}_per_subject.png")
    return {"title": "Real EEG (notebook 95, the recordings shipped in data/real)", "tables": tables, "figures": figures}


def generation(run: Path) -> dict | None:
    gen = (read(run / "metrics.json") or {}).get("generation")
    if not gen:
        return None
    columns = [c for c in next(iter(gen["table"].values())) if c != "seconds"]
    rows = [[name, *(f"{v[c]:.3f}" for c in columns)] for name, v in gen["table"].items()]
    columns = [COLUMN_NAMES.get(c, c) for c in columns]
    return {"title": "Generation: the SSMDP as a generative model (notebook 70)",
            "tables": [table(f"Distances of generated to real EEG over {gen['n_recordings']} recordings (lower is closer); "
                             "'real vs real' is the floor.", ["samples", *columns], rows)],
            "figures": ["70_generation/generated_vs_real.png", "70_generation/psd_by_group.png"]}


COLUMN_NAMES = {"top1_10way": "top-1, 10-way", "two_way_features": "2-way (judge features)",
                "two_way_within_class": "2-way within a class", "two_way_embedding": "2-way (embedder)",
                "pixcorr": "PixCorr", "ssim": "SSIM", "log_psd_rmse": "log-spectrum RMSE",
                "band_ratio_diff": "band-ratio difference", "amplitude_ks": "amplitude KS distance"}
E2I_METRICS = ("top1_10way", "two_way_features", "two_way_within_class", "two_way_embedding", "pixcorr", "ssim")


def eeg_to_image(run: Path) -> dict | None:
    e2i = (read(run / "metrics.json") or {}).get("eeg_to_image")
    if not e2i:
        return None
    available = list(next(iter(e2i["summary"].values())))
    metrics = [m for m in E2I_METRICS if m in available] or available
    rows = [[name, *(f"{v[m]['mean']:.3f}" + ("" if v[m]["std"] is None else f" ± {v[m]['std']:.3f}") for m in metrics)]
            for name, v in e2i["summary"].items()]
    chance = (", ".join(f"{COLUMN_NAMES.get(k, k)} {v:.3f}" for k, v in e2i["chance"].items() if k in metrics)
              if isinstance(e2i["chance"], dict) else e2i["chance"])
    tables = [table(f"{e2i['test_images']} test images, seeds {', '.join(map(str, e2i['seeds']))} (mean ± std over seeds): "
                    "top-1 identification among 10 classes by the judge, 2-way identification in the judge's features, "
                    "within a class, and in the image embedder's features, PixCorr, SSIM (every metric: the notebook). "
                    f"Chance: {chance}. The judge classifies test images at {e2i['judge_test_accuracy']:.3f}.",
                    ["method", *(COLUMN_NAMES.get(m, m) for m in metrics)], rows)]
    if e2i.get("ablations"):
        am = [m for m in E2I_METRICS if m in next(iter(e2i["ablations"].values()))]
        tables.append(table("Ablations of the structure-guided model (mean over the ablation seeds).",
                            ["variant", *(COLUMN_NAMES.get(m, m) for m in am)],
                            [[n, *(f"{v[m]:.3f}" for m in am)] for n, v in e2i["ablations"].items()]))
    return {"title": "EEG-to-image (notebooks 80, 85: simulated visual EEG of 8×8 digits)", "tables": tables,
            "figures": ["80_eeg_encoder_pretrain/block_design_pitfall.png", "80_eeg_encoder_pretrain/masked_reconstruction.png",
                        "85_eeg_to_image/reconstructions.png", "85_eeg_to_image/metrics.png",
                        "85_eeg_to_image/dreamdiffusion_learning_curve.png"]}


def frame_rows(frame, columns: list[str], x100: tuple = ()) -> list[list[str]]:
    """A DataFrame's rows as table cells: ``x100`` columns as kappa-style ×100 numbers with one decimal."""
    return [[f"{100 * r[c]:.1f}" if c in x100 else str(r[c]) for c in columns] for _, r in frame.iterrows()]


def sweeps(run: Path) -> dict | None:
    """The sweeps run after `make run` into this run folder (docs/sweeps.md), each from its own files."""
    tables, figures = [], []
    scores = ("val kappa", "test kappa", "test bal. acc")
    if (run / "compute").exists() or (run / "backbone").exists() or (run / "recipe").exists():
        import compute_curve

        if (run / "compute").exists():
            frame = compute_curve.compute_table(run)
            tables.append(table("`make compute-curve`: the probe and the LFT (seed 0) on caches of backbones pretrained "
                                "for other numbers of steps (0: untrained); kappa and balanced accuracy ×100.",
                                ["readout", "labels", "steps", *scores], frame_rows(frame, ["readout", "labels", "steps", *scores], scores)))
            figures.append("45_controls/compute_curve.png")
        if (run / "backbone").exists():
            frame = compute_curve.backbone_table(run)
            cols = ["readout", "labels", "backbone", "backbone_pretrained", "params", *scores]
            tables.append(table("`make backbone-curve`: the same for other backbone widths and depths, each with its own "
                                "untrained control.", cols, frame_rows(frame, cols, scores)))
            figures.append("45_controls/backbone_curve.png")
        if (run / "recipe" / "lft" / "seed_0" / "metrics.json").exists():
            import pandas as pd

            frame = pd.DataFrame(compute_curve.point(run / "recipe", True, backbone="pretrained")
                                 + compute_curve.point(run / "recipe", False, backbone="untrained"))
            frame = frame[frame["readout"].str.startswith("LFT")]
            tables.append(table("`make reference-recipe`: the reference's LFT settings (params/paper.yaml's) on this run's "
                                "caches, seed 0.", ["backbone", "labels", *scores], frame_rows(frame, ["backbone", "labels", *scores], scores)))
    if (run / "ablations" / "results.csv").exists():
        from ablations import agreement_sentence  # tools/ablations.py
        from eegdm_utils.eval.ablation_report import difference_intervals, gather, paper_agreement, summary
        from eegdm_utils.eval.ablations import VARIANTS

        results, seconds = gather(run)
        intervals = difference_intervals(run)
        frame = summary(results, seconds, intervals)
        cols = ["table", "variant", "labels", "seeds", *METRICS, *(["Δ kappa vs full [95% CI]"] if len(intervals) else []),
                "paper (100%)", "minutes"]
        info = read(run / "ablations" / "sweep_info.json") or {}
        source = (f" Sweep at commit `{info['commit']}` on {info['cores']} cores of {info['cpu']}, gathered "
                  f"{info['gathered']}, {info['minutes']} minutes of notebook 60." if info else "")
        absent = [v for v in VARIANTS if v not in set(frame["variant"])]
        source += f" Not run in this sweep: {', '.join(f'`{v}`' for v in absent)}." if absent else ""
        if "full" in set(results["variant"]) and len(intervals):
            source += " " + agreement_sentence(*paper_agreement(results, intervals)) + "."
        tables.append(table("`make ablations`: every variant of the paper's ablation study (notebook 60), test ×100, "
                            "mean ± population std over seeds; the paper's kappa / balanced accuracy / weighted F1 on TUEV "
                            "beside." + source, cols, frame_rows(frame, cols)))
        figures.append("60_ablations/agreement_with_paper.png")
    scale = read(run / "scale" / "summary.json")
    if scale:
        rows = [[r["curve"], (f"{r['labelled']} labelled subjects" if "labelled" in r else
                              f"{r['unlabelled']} unlabelled subjects, {r['steps']} steps" if "steps" in r else
                              "reference (22 labelled)"),
                 r["method"], f"{r['fraction']:.0%}", r["seeds"] or "fit once", f"{r['train_windows']:,}",
                 f"{r['kappa']:.1f} ± {r['kappa_std']:.1f} [{r['kappa_low']:.1f}, {r['kappa_high']:.1f}]",
                 f"{r['balanced_accuracy']:.1f} ± {r['balanced_accuracy_std']:.1f} "
                 f"[{r['balanced_accuracy_low']:.1f}, {r['balanced_accuracy_high']:.1f}]",
                 f"{r['weighted_f1']:.1f} ± {r['weighted_f1_std']:.1f}", f"{r['minutes']:.1f}"] for r in scale["rows"]]
        tables.append(table(f"`make scale-curves`: test metrics ×100 on {scale['test_subjects']} simulated evaluation "
                            "subjects, mean ± population std over seeds [95% interval over test subjects]. Sweep at "
                            f"commit `{scale['commit']}` on {scale['cores']} cores of {scale['cpu']}, gathered "
                            f"{scale['gathered']}: {scale['minutes']} minutes of fits (each row's minutes: its seeds together), "
                            "and the shared steps: " + "; ".join(f"{k} {v} min" for k, v in scale["shared_minutes"].items())
                            + ". " + " ".join(scale["conclusions"]),
                            ["curve", "point", "method", "labels", "seeds", "training windows", "kappa",
                             "balanced accuracy", "weighted F1", "minutes"], rows))
        figures += ["scale_curves/labelled_data.png", "scale_curves/unlabelled_data.png"]
    choices = read(run / "choices" / "choices.json")
    if choices:
        backbone = choices.get("backbone_sha256")
        source = ((f" The LFT candidates were fitted on this run's backbone (weights sha256 `{backbone[:12]}`)." if backbone
                   else "") + f" Gathered at commit `{choices['commit']}` on {choices['cores']} cores of {choices['cpu']}, "
                  f"{choices['gathered']}; compared with `{choices['params']}`.")
        rows = [[f"`{name}`", d["notebook"], d["criterion"],
                 ", ".join(f"{k}: {v['score']:.3f}" + (f" ± {v['std']:.3f}" if "std" in v else "") for k, v in d["candidates"].items()),
                 d["chosen"], d["in_params"] + ("" if d["agrees"] else " (differs)")] for name, d in choices["choices"].items()]
        tables.append(table("`make choices`: design choices decided on validation (no test score enters); each "
                            "candidate's validation score, the one validation picks and the parameter file's value." + source,
                            ["parameter", "notebook", "criterion", "candidates (validation)", "chosen", "parameter file"],
                            rows))
    if not tables:
        return None
    return {"title": "Sweeps after `make run` (docs/sweeps.md)", "tables": tables, "figures": figures}


SECTIONS = (pipeline, classification, diagnostics, foundation, real_eeg, generation, eeg_to_image, sweeps)
SECTION_NAMES = {"pipeline": "the data and the backbone (notebooks 10, 20)", "classification": "the classification report (notebooks 40, 45, 50)",
                 "diagnostics": "where the information is (notebook 45)", "foundation": "EEGFoundation (notebook 90)",
                 "real_eeg": "real EEG (notebook 95)", "generation": "generation (notebook 70)",
                 "eeg_to_image": "EEG-to-image (notebooks 80, 85)", "sweeps": "the sweeps"}
# what `make run` leaves to `make full` (tools/run.py's FULL), so that a trimmed table is never read as the whole
TRIMMED = ("`make full` adds: seeds 3 and 4 of notebook 40 (the report is over seeds 0-2); EEGFoundation's seeds "
           "3 and 4 and its fusion-head and amplitude-token rows; notebook 45's choice of latent (gate or filter, std "
           "or mean: one more backbone pass over every window); notebook 95's self-supervised route (an SSMDP "
           "pretrained on each fold's training subjects, beside the transfer backbone) and its run on the CHB-MIT "
           "excerpt (one patient, seizure vs not, split in time); notebook 85's DreamDiffusion learning curve "
           "(validation), its zero-shot section (digits 8 and 9 never seen by the EEG side) and its mask-ratio "
           "ablation (0.5 and 0.75).")


def started_at(info: dict) -> float | None:
    """When the run started (``run_info.json``'s minute, as a POSIX time), or None if it does not say: a
    figure older than that was made by an earlier run (a section this tier leaves out), not by this one."""
    try:
        return datetime.strptime(info["started"], "%Y-%m-%d %H:%M UTC").replace(tzinfo=timezone.utc).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


def collect(run_dir: str | Path) -> dict:
    """Every section this run folder has, its run information and timings, as one JSON-able dict."""
    run = Path(run_dir)
    info = read(run / "run_info.json")
    if info is None:
        raise SystemExit(f"{run}/run_info.json: missing; run the notebooks with tools/run.py (make demo / make run)")
    sections, missing = [], []
    for section in SECTIONS:
        s = section(run)
        if s is not None:
            sections.append(s)
        elif section is not sweeps:  # a sweep that has not run is named below, with the command that runs it
            missing.append(SECTION_NAMES[section.__name__])
    if not sections:
        raise SystemExit(f"{run}: no notebook metrics to report")
    params = yaml.safe_load((REPO / info["params"]).read_text()) if (REPO / info["params"]).exists() else {}
    figures_dir = (REPO / "notebooks" / params.get("figures_dir", f"../{run}/figures")).resolve()
    # the tier's own notebooks; a sweep's notebooks (ablations/nb/...) are timed under their folder, not the run
    timings = {k: v for k, v in (read(run / "timings.json") or {}).items() if "/" not in k}
    since = started_at(info)
    for s in sections:  # only the figures this run made (decided here, so that rendering reads no file)
        s["figures"] = [f for f in s["figures"] if (figures_dir / f).exists()
                        and (since is None or (figures_dir / f).stat().st_mtime >= since)]
    return {"run": {**info, "timings": timings, "figures_dir": str(figures_dir.relative_to(REPO))
                    if figures_dir.is_relative_to(REPO) else str(figures_dir)},
            "sections": sections, "not_in_run": missing,
            "sweeps_not_run": [what for path, what in SWEEPS.items() if not (run / path).exists()]}


def markdown_table(t: dict) -> list[str]:
    lines = [f"| {' | '.join(t['columns'])} |", "|" + "---|" * len(t["columns"])]
    return lines + [f"| {' | '.join(r)} |" for r in t["rows"]]


def render(results: dict, figure_prefix: str) -> str:
    """RESULTS.md's text. ``figure_prefix``: the figures folder as seen from where RESULTS.md is written."""
    run = results["run"]
    total = sum(run["timings"].values())
    out = ["# Results", "",
           f"Generated by `tools/results.py` from the run of `{run['params']}` ({run['tier']} tier) started {run['started']}, "
           f"commit `{run['commit']}`{' (with uncommitted changes)' if run.get('dirty') else ''}, on {run['cores']} cores of "
           f"{run['cpu']}, in {total / 60:.1f} minutes. Do not edit: `make run` writes it again, and "
           "`python tools/results.py --check-committed` fails when it and the run's numbers differ.", "",
           "Wall time of each notebook (s): " + ", ".join(f"{k} {v:.0f}" for k, v in run["timings"].items()) + ".", ""]
    for s in results["sections"]:
        out += [f"## {s['title']}", ""]
        for t in s["tables"]:
            out += [t["caption"], "", *markdown_table(t), ""]
        for fig in s["figures"]:
            out += [f"![{fig}]({figure_prefix}/{fig})", "", f"*{FIGURES.get(fig, fig)}*", ""]
    out += ["## Not in this run", ""]
    out += [f"- {name}: not part of the {run['tier']} tier (`make run` runs it)" for name in results["not_in_run"]]
    if run["tier"] == "run":
        out += [f"- {TRIMMED}"]
    if run["tier"] in ("run", "full"):
        out += [f"- `{what}`: not run on this code; its numbers are reported once it has run into this run folder"
                for what in results["sweeps_not_run"]]
    out += ["- Intervals over test subjects for every table: the classification claims and each ablation's change "
            "from the full model carry one (a paired bootstrap over the test subjects); elsewhere the ± is over seeds "
            "(or folds) only, and with a handful of test subjects the subject-to-subject spread is the larger term, "
            "so a margin inside a few stds is not a finding.", ""]
    return "\n".join(out).rstrip() + "\n"


NOTEBOOK_ROWS = [  # (notebook, what it shows, what it needs before it); the minutes come from the published runs
    ("10_data_prep", "the simulated TUEV-style corpus (or your EDF folder), preprocessed as the reference; one window per class", "-"),
    ("20_pretrain_ssmdp", "the S4D diffusion denoiser (SSMDP) trained as a DDPM: forward process, loss, denoising", "10"),
    ("30_cache_latents", "the frozen backbone's gate activity cached per 1-s pool (and the untrained control's)", "20"),
    ("40_finetune_lft", "the Latent Fusion Transformer, its untrained-backbone control and EEGNet, one seed per run", "30"),
    ("45_controls", "band powers, linear probes, and where in the cache the event is", "30"),
    ("50_report", "every row over seeds, per-class recall, confusions, the claims checked", "40, 45 (90)"),
    ("60_ablations", "one of the paper's ablations for one seed (`make ablations` runs them all)", "30"),
    ("70_generation", "DDPM and DDIM sampling written out; generated EEG beside real EEG", "20"),
    ("80_eeg_encoder_pretrain", "EEG-to-image data (or THINGS-EEG2) and the masked EEG encoder (stage A)", "(10)"),
    ("85_eeg_to_image", "DreamDiffusion and the structure-guided model with baselines, controls and bounds", "80"),
    ("90_foundation_baseline", "EEGFoundation: tokens, masked-token pretraining, the released head", "10 (40, 45)"),
    ("95_real_eeg", "real EEG (shipped PhysioNet excerpts or your folder), subject-wise folds", "20 (90)"),
]
NOTEBOOKS_START = "<!-- results:notebooks (tools/results.py writes this block) -->"
BLOCK_END = "<!-- results:end -->"


def tier_timings() -> dict[str, dict]:
    """Each published tier's notebook minutes: {tier: {notebook: minutes}} (seeds and datasets summed)."""
    out = {}
    for tier in ("demo", "run"):
        path = REPO / "results" / tier / "timings.json"
        if path.exists():
            minutes: dict[str, float] = {}
            for step, seconds in json.loads(path.read_text()).items():
                nb = next((n for n, _, _ in NOTEBOOK_ROWS if step.startswith(n)), step)
                minutes[nb] = minutes.get(nb, 0.0) + seconds / 60
            out[tier] = minutes
    return out


def notebooks_block() -> str:
    timings = tier_timings()
    tiers = [t for t in ("demo", "run") if t in timings]
    head = ["notebook", "what it shows", "needs", *(f"min, make {t}" for t in tiers)]
    rows = [[f"`{nb}`", what, needs, *(f"{timings[t][nb]:.1f}" if nb in timings[t] else "-" for t in tiers)]
            for nb, what, needs in NOTEBOOK_ROWS]
    return "\n".join([NOTEBOOKS_START, "", *markdown_table({"columns": head, "rows": rows}), "", BLOCK_END])


def headline(results: dict) -> str:
    """The README's block: the classification table with all labels, and where it came from."""
    s = next((s for s in results["sections"] if "headline" in s), None)
    if s is None:
        return ""
    t = dict(s["headline"])
    t["rows"] = [r for r in t["rows"] if r[1] == "100%"]
    run = results["run"]
    findings = [s["findings"], ""] if s.get("findings") else []
    return "\n".join([HEADLINE_START, "", *markdown_table(t), "",
                      f"{t['caption']} All training labels; `make {run['tier']}` of {run['started']} "
                      f"({sum(run['timings'].values()) / 60:.0f} minutes), commit `{run['commit']}`, {run['cores']} cores of "
                      f"{run['cpu']}. Every table: [RESULTS.md](RESULTS.md).", "", *findings, BLOCK_END])


def with_block(readme: str, block: str, start: str, end: str = BLOCK_END) -> str:
    if start not in readme:
        raise SystemExit(f"README.md: no block {start}")
    before, rest = readme.split(start, 1)
    return before + block + rest.split(end, 1)[1]


def disagreements(results: dict, results_md: Path, readme: Path) -> list[str]:
    """The files that differ from what ``results`` renders to (empty: they agree)."""
    problems = [] if results_md.read_text() == render(results, prefix_for(results, results_md.parent)) else [results_md.name]
    text = readme.read_text()
    if with_block(text, headline(results), HEADLINE_START) != text:
        problems.append(f"{readme.name}'s headline block")
    if with_block(text, notebooks_block(), NOTEBOOKS_START) != text:
        problems.append(f"{readme.name}'s notebooks block")
    return problems


def write(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def prefix_for(results: dict, where: Path) -> str:
    return os.path.relpath(REPO / results["run"]["figures_dir"], where.resolve())


def publish(results: dict) -> None:
    """results/<tier>/ (the run's numbers and timings); for `make run` also RESULTS.md and the README's headline;
    the README's notebooks block from every published tier's timings."""
    tier = results["run"]["tier"]
    folder = REPO / "results" / tier
    folder.mkdir(parents=True, exist_ok=True)
    write(folder / "results.json", json.dumps(results, indent=1) + "\n")
    write(folder / "timings.json", json.dumps(results["run"]["timings"], indent=1) + "\n")
    readme = (REPO / "README.md").read_text()
    if tier == "run":
        write(REPO / "RESULTS.md", render(results, prefix_for(results, REPO)))
        readme = with_block(readme, headline(results), HEADLINE_START)
    write(REPO / "README.md", with_block(readme, notebooks_block(), NOTEBOOKS_START))
    print(f"wrote results/{tier}/" + (", RESULTS.md and the README's blocks" if tier == "run" else " and the README's notebooks block"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", nargs="?")
    parser.add_argument("--publish", action="store_true", help="also write results/<tier>/, RESULTS.md and the README blocks")
    parser.add_argument("--check", action="store_true", help="compare RESULTS.md and the README with RUN_DIR instead of writing")
    parser.add_argument("--check-committed", action="store_true", help="compare RESULTS.md and the README with results/run/")
    args = parser.parse_args(argv)
    source = REPO / "results" / "run" / "results.json" if args.check_committed else args.run_dir
    if args.check_committed:
        results = json.loads(Path(source).read_text())
    elif args.run_dir:
        results = collect(args.run_dir)
    else:
        parser.error("give RUN_DIR or --check-committed")
    if args.check or args.check_committed:
        problems = disagreements(results, REPO / "RESULTS.md", REPO / "README.md")
        if problems:
            raise SystemExit(f"{' and '.join(problems)} differ from {source}: run `make run`, or "
                             "`python tools/results.py RUN_DIR --publish` on the run that made them")
        print(f"RESULTS.md and the README's blocks agree with {source}")
        return
    run = Path(args.run_dir)
    write(run / "results.json", json.dumps(results, indent=1) + "\n")
    write(run / "RESULTS.md", render(results, prefix_for(results, run)))
    print(f"wrote {run / 'RESULTS.md'}")
    if args.publish:
        publish(results)


if __name__ == "__main__":
    main()
