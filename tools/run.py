"""Run notebooks with papermill, in order, into one run folder: the engine of `make demo`,
`make run`, `make full` and the sweeps.

    python tools/run.py PARAMS RUN_DIR --plan demo|run|full|paper-dry [--seeds 0 1 2]
    python tools/run.py PARAMS RUN_DIR --notebook 60_ablations --out ablations/nb/step1_seed0 -p variant step1 -p seed 0

Each notebook gets only the keys of PARAMS that it declares (so no parameter meant for another
notebook reaches it), then the ``-p NAME VALUE`` overrides; an override that names no parameter of
the notebook stops the run with an error naming it (a typo is never silently ignored). Values of
``-p`` are read as YAML (``-p seed 3``, ``-p routes "[probe, band_power]"``).

While it runs it prints the notebook n of N, the time elapsed and an estimate of what remains from
the previous run's timings in RUN_DIR (or the timings shipped with the results, ``results/``);
with a terminal attached, the notebooks' own progress bars and output stream through. Every
notebook's wall time is written to RUN_DIR/timings.json, with the commit, CPU and date in
RUN_DIR/run_info.json (read by tools/results.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from eegdm_utils.core.files import atomic_write_json, read_json
from eegdm_utils.core.runtime import cpu_model

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
KERNEL = "eegdm"

# notebook 95 again on the shipped CHB-MIT excerpt: one patient, so blocks of time instead of subjects
CHBMIT = {"real_root": "../data/real/chbmit", "real_labels": "../data/real/chbmit/labels.csv", "real_name": "chbmit",
          "real_notch_freq": 60.0, "real_subjects": [], "split_by": "time", "n_folds": 3}


# what `make full` adds to params/default.yaml: the sections `make run` leaves out to save time (RESULTS.md names them)
FULL = {"fm_seeds": [0, 1, 2, 3, 4], "variants": ["release", "fusion", "amplitude", "no_embedding"],
        "e2i_mask_ablations": [0.5, 0.75], "e2i_unseen_classes": [8, 9], "e2i_curve_steps": [0, 80, 160, 320],
        "diagnose_variants": True,
        "routes": ["transfer", "self-supervised", "untrained", "probe", "band_power", "eegnet", "foundation"]}


# `make paper-dry-run`: params/paper.yaml on the CPU with only the data size, batch sizes, step counts and number of
# seeds made small, so that every notebook runs once with the paper's models (what a user with a GPU and TUEV runs
# first: a shape, a device or a missing key fails here in minutes, not hours into a GPU run)
PAPER_DRY = {
    "accelerator": "cpu", "devices": 1, "strategy": "auto", "precision": "32-true", "e2i_threads": 0,  # the CPU
    # data size (each window through the paper's backbone and EEGFoundation's 87 M-parameter encoder costs seconds on
    # a CPU: few windows, and 200-sample sequences for the encoder instead of the whole window); 10 training subjects,
    # so that the 2 validation subjects keep windows under EEGFoundation's 100 uV rejection limit (with 5, the one
    # validation subject's windows all reach it)
    "sim_train_subjects": 10, "sim_eval_subjects": 1, "sim_record_seconds": 10, "probe_windows": 8,
    "sequence_samples": 200,
    "fm_val_sequences": 8, "n_recordings": 2, "real_subjects": ["Subject00", "Subject01", "Subject02", "Subject03"],
    "n_folds": 2, "e2i_subjects": 1, "e2i_pretrain_subjects": 1, "e2i_repetitions": 1, "e2i_block_check_images": 40,
    "e2i_corpus_segments": 32, "e2i_probe_trials": 64, "e2i_val_images": 8, "e2i_test_images": 8,
    "e2i_grid_images": 2, "e2i_grid_samples": 1,
    # repeats of the same fit: one seed each (every variant and route still runs once)
    "fm_seeds": [0], "e2i_seeds": [0], "e2i_ablation_seeds": [0],
    # batches: a few items (the paper's pretraining batch of 108 windows alone takes about 17 GB on a CPU)
    "pretrain_batch_size": 4, "lft_batch_size": 8, "fm_batch_size": 4, "head_batch_size": 4, "batch_windows": 2,
    "e2i_pretrain_batch": 8, "e2i_head_batch": 8, "e2i_batch": 8,
    # step counts
    "pretrain_epochs": 0, "pretrain_steps": 2, "val_every": 1, "ckpt_every": 2, "finetune_epochs": 1,
    "warmup_epochs": 0, "noise_epochs": 1, "fm_pretrain_steps": 2, "ssl_steps": 2, "ddim_steps": 2,
    "e2i_pretrain_steps": 2, "e2i_structure_steps": 2, "e2i_embedder_steps": 2,
    "e2i_judge_steps": 100,  # the judge scores every reconstruction: notebook 85 stops unless it classifies the test images
    "e2i_generator_steps": 2, "e2i_controlnet_steps": 2, "e2i_head_steps": 2, "e2i_finetune_steps": 2,
    "e2i_curve_steps": [0, 2], "e2i_ddim_steps": 2,
}

# the parameter counts of the paper configuration (the papers' and releases' sizes), checked after a dry run
PAPER_SIZES = {"SSMDP denoiser": 5_931_649, "Latent Fusion Transformer": 6_898_950,
               "EEGFoundation encoder": 87_192_278}


# papermill's own log lines, dropped from the stream (the notebooks' output and progress bars stay)
PAPERMILL_CHATTER = ("Executing Cell", "Ending Cell", "Input Notebook", "Output Notebook", "Working directory",
                     "Executing notebook with kernel", "<Figure size")


def plan(name: str, seeds: list[int]) -> list[tuple[str, str, dict]]:
    """The steps of a tier: (notebook, output name under RUN_DIR, overrides). Each notebook reads what
    the ones before it wrote to RUN_DIR."""
    head = [(nb, nb, {}) for nb in ("10_data_prep", "20_pretrain_ssmdp", "30_cache_latents")]
    seeds = [0] if name == "paper-dry" else seeds
    sweep = [("40_finetune_lft", f"40_finetune_lft_seed{s}", {"seed": s}) for s in seeds]
    if name == "demo":
        return head + sweep + [(nb, nb, {}) for nb in ("45_controls", "50_report")]
    tail = ["45_controls", "90_foundation_baseline", "50_report", "70_generation", "80_eeg_encoder_pretrain",
            "85_eeg_to_image", "95_real_eeg"]
    if name == "paper-dry":  # notebook 60 too, once (its default variant)
        tail, extra = tail[:3] + ["60_ablations"] + tail[3:], PAPER_DRY
    elif name in ("run", "full"):
        extra = FULL if name == "full" else {}
    else:
        raise SystemExit(f"unknown plan {name!r}: expected demo, run, full or paper-dry")
    steps = head + sweep + [(nb, nb, {}) for nb in tail]
    if name == "full":
        steps.append(("95_real_eeg", "95_real_eeg_chbmit", CHBMIT))
    return [(nb, out, {**{k: v for k, v in extra.items() if k in declared_parameters(NOTEBOOKS / f"{nb}.ipynb")},
                       **o}) for nb, out, o in steps]


def paper_sizes(run_dir: Path) -> dict:
    """The parameter counts a dry run of the paper configuration measured (the names of PAPER_SIZES)."""
    lft = read_json(run_dir / "lft" / "seed_0" / "metrics.json")
    encoders = read_json(run_dir / "foundation" / "metrics.json")["pretraining"]
    return {"SSMDP denoiser": read_json(run_dir / "metrics.json")["pretrain"]["n_params"],
            "Latent Fusion Transformer": lft["n_params"],
            "EEGFoundation encoder": encoders["release"]["parameters"]}


def check_paper_sizes(run_dir: Path) -> None:
    measured = paper_sizes(run_dir)
    wrong = {name: (measured[name], n) for name, n in PAPER_SIZES.items() if measured[name] != n}
    for name, n in PAPER_SIZES.items():
        print(f"{name}: {measured[name]:,} parameters (the paper's {n:,})")
    if wrong:
        raise SystemExit("the paper configuration does not build the paper's models: " + "; ".join(
            f"{name} has {got:,} parameters, not {n:,}" for name, (got, n) in wrong.items()))


def declared_parameters(notebook: Path) -> dict:
    """The names the notebook's cell tagged ``parameters`` declares, with their declared types."""
    import papermill as pm

    return pm.inspect_notebook(str(notebook))


def notebook_parameters(notebook: Path, params: dict, overrides: dict) -> dict:
    """PARAMS' keys that ``notebook`` declares, then the overrides; an override it does not declare is an
    error naming it and the notebook."""
    declared = declared_parameters(notebook)
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise SystemExit(f"{notebook.name}: no parameter named {', '.join(unknown)} (its parameters: "
                         f"{', '.join(sorted(declared))})")
    return {**{k: v for k, v in params.items() if k in declared}, **overrides}


def read_params(path: str) -> dict:
    params = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(params, dict):
        raise SystemExit(f"{path}: expected a mapping of parameter names to values")
    return params


def run_info(params_path: str, tier: str) -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""
    return {"commit": git("rev-parse", "--short=10", "HEAD"), "dirty": bool(git("status", "--porcelain", "--", "eegdm_utils",
            "notebooks", "params")), "cpu": cpu_model(), "cores": os.cpu_count(), "params": str(params_path), "tier": tier,
            "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def estimate(previous: dict, remaining: list[str]) -> str:
    known = [previous[name] for name in remaining if name in previous]
    if not known:
        return "no earlier timings"
    unknown = len(remaining) - len(known)
    return f"about {sum(known) / 60:.0f} min left" + (f" (+{unknown} notebooks not timed before)" if unknown else "")


def previous_timings(run_dir: Path, tier: str) -> dict:
    for path in (run_dir / "timings.json", REPO / "results" / tier / "timings.json"):
        if path.exists():
            return {k: v for k, v in read_json(path).items() if isinstance(v, (int, float))}
    return {}


def execute(steps, params_path: str, run_dir: Path, tier: str, fresh_timings: bool) -> None:
    import papermill as pm

    params = read_params(params_path)
    run_dir.mkdir(parents=True, exist_ok=True)
    # every step's parameters are checked before the first notebook runs: a typo stops at once
    resolved = [notebook_parameters(NOTEBOOKS / f"{nb}.ipynb", params, {**o, "run_dir": os.path.relpath(run_dir.resolve(), NOTEBOOKS)})
                for nb, _, o in steps]
    previous = previous_timings(run_dir, tier)
    timings_path = run_dir / "timings.json"
    timings = {} if fresh_timings or not timings_path.exists() else read_json(timings_path)
    if fresh_timings:
        atomic_write_json(run_dir / "run_info.json", run_info(params_path, tier))
    tty = sys.stdout.isatty()
    if tty:  # papermill streams the notebooks' output (their progress bars included) through its logger
        logging.basicConfig(level=logging.INFO, format="    %(message)s")
        logging.getLogger("traitlets").setLevel(logging.ERROR)
        for handler in logging.getLogger().handlers:
            handler.addFilter(lambda record: not str(record.msg).strip().startswith(PAPERMILL_CHATTER))
    os.environ["EEGDM_PROGRESS"] = "text" if tty else "0"  # the kernels inherit it: text bars, streamed below
    start = time.perf_counter()
    for i, ((nb, out, _), values) in enumerate(zip(steps, resolved)):
        elapsed = time.perf_counter() - start
        left = estimate(previous, [o for _, o, _ in steps[i:]])
        print(f"[{i + 1}/{len(steps)}] {out}  (elapsed {elapsed / 60:.1f} min, {left})", flush=True)
        output = run_dir / f"{out}.ipynb"
        output.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(NOTEBOOKS / f"{nb}.ipynb"), str(output), parameters=values, kernel_name=KERNEL,
                                cwd=str(NOTEBOOKS), progress_bar=tty, log_output=tty, request_save_on_cell_execute=False,
                                # no TCP notice from the kernel; and with a terminal attached, ipykernel's capture of
                                # its low-level output would swallow the progress bars' stream messages
                                extra_arguments=["--IPKernelApp.log_level=ERROR", "--IPKernelApp.capture_fd_output=False"])
        except pm.PapermillExecutionError as e:
            raise SystemExit(f"{out}: failed in cell {e.exec_count} ({e.ename}: {e.evalue}); see {output}") from None
        timings[out] = round(time.perf_counter() - t0, 1)
        atomic_write_json(timings_path, timings)
        print(f"    {out} {timings[out]:.0f} s", flush=True)
    print(f"done: {len(steps)} notebooks in {(time.perf_counter() - start) / 60:.1f} min -> {run_dir}", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("params")
    parser.add_argument("run_dir")
    parser.add_argument("--plan", help="demo, run, full or paper-dry")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--notebook", help="one notebook (its name without .ipynb)")
    parser.add_argument("--out", help="its output name under RUN_DIR (default: the notebook's name)")
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    args = parser.parse_args(argv)
    overrides = {k: yaml.safe_load(v) for k, v in args.p}
    run_dir = Path(args.run_dir)
    if args.plan:
        if args.notebook or overrides:
            parser.error("--plan runs a tier as it is; use --notebook with -p for one notebook")
        execute(plan(args.plan, args.seeds), args.params, run_dir, args.plan, fresh_timings=True)
        if args.plan == "paper-dry":
            check_paper_sizes(run_dir)
    elif args.notebook:
        execute([(args.notebook, args.out or args.notebook, overrides)], args.params, run_dir, "single",
                fresh_timings=False)
    else:
        parser.error("give --plan or --notebook")


if __name__ == "__main__":
    main()
