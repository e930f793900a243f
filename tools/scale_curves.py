"""Label- and pretraining-data scaling curves (`make scale-curves`, after `make run`).

    python tools/scale_curves.py RUN_DIR [PARAMS] [--labelled 22 88 176] [--unlabelled 22 176]
        [--steps 800 3200] [--seeds 0 1 2] [--test-subjects 28] [--figures FIGURES_DIR]

Curve 1 (labelled data): RUN_DIR's backbone and its untrained control fixed; the LFT and EEGNet
(each seed), the two cache probes and band powers on each number of labelled subjects. Curve 2
(unlabelled data): an SSMDP pretrained as RUN_DIR's (its configuration, other steps) on each number
of subjects that are never labelled, then the LFT and the probe on the first `base_labelled` labelled
subjects at each label fraction, beside the untrained control. Both on one fixed test set of
`--test-subjects` simulated evaluation subjects (eegdm_utils.eval.scaling). Everything goes to
RUN_DIR/scale/; a fit whose result file exists is skipped, so a stopped sweep resumes. Prints each
point as it finishes, then the table; writes RUN_DIR/scale/summary.json and the figures.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from eegdm_utils.core.files import atomic_write_json, read_json  # noqa: E402
from eegdm_utils.core.runtime import seed_everything, torch_device  # noqa: E402
from eegdm_utils.data import dataprep  # noqa: E402
from eegdm_utils.data.mulaw import staged_mu_law  # noqa: E402
from eegdm_utils.data.preprocess import PreprocessConfig  # noqa: E402
from eegdm_utils.data.real_folders import FoldView, window_subjects  # noqa: E402
from eegdm_utils.data.simulate import SimulationConfig  # noqa: E402
from eegdm_utils.data.store import build_store  # noqa: E402
from eegdm_utils.eval.controls import band_power_features, cache_probe_features, event_pool, event_samples, readout_run  # noqa: E402
from eegdm_utils.eval.report import BAND_POWER, EEGDM, EEGNET, PROBE, PROBE_UNTRAINED, UNTRAINED  # noqa: E402
from eegdm_utils.eval import figures  # noqa: E402
from eegdm_utils.eval.scaling import (ScalePlan, collect, conclusions, fit_path, plot_curves, point_splits,  # noqa: E402
                                      record_fit, subject_pools, summarise, test_lines)
from eegdm_utils.models.diffusion import ddpm_scheduler  # noqa: E402
from eegdm_utils.models.lft import LFTConfig  # noqa: E402
from eegdm_utils.train.finetuning import FinetuneConfig, evaluate_lines, finetune_optim, label_subset, network_scores  # noqa: E402
from eegdm_utils.train.latent_cache import ArrayCache, CacheConfig, LatentCache, split_latents  # noqa: E402
from eegdm_utils.train.pretraining import load_denoiser, train_ssmdp, untrained_denoiser  # noqa: E402
from eegdm_utils.train.recipes import fit_eegnet, fit_lft  # noqa: E402
from eegdm_utils.train.trainer import ScaleConfig  # noqa: E402
from run import NOTEBOOKS, declared_parameters, run_info  # noqa: E402  (tools/run.py, beside this script)


def notebook_settings(notebook: str, params: dict) -> dict:
    """The values ``notebook`` runs with under ``params``: its declared defaults, then the keys of
    ``params`` it declares (as tools/run.py passes them): the LFT and fine-tuning settings are notebook
    40's, the corpus's notebook 10's, so the curves fit what `make run` fits."""
    declared = declared_parameters(NOTEBOOKS / f"{notebook}.ipynb")
    return {**{k: ast.literal_eval(v["default"]) for k, v in declared.items()},
            **{k: v for k, v in params.items() if k in declared}}


class Sweep:
    """What every point shares: the run's settings, the one-split store of the curves, its pools."""

    def __init__(self, run_dir: Path, params: dict, plan: ScalePlan, sim_dir: Path = REPO / "data" / "sim_tuev"):
        self.run_dir, self.params, self.plan = run_dir, params, plan
        self.out = run_dir / "scale"
        self.device = torch_device(params.get("accelerator", "auto"))
        self.scale = ScaleConfig(accelerator=params.get("accelerator", "auto"), devices=params.get("devices", 1))
        sim = plan.corpus(SimulationConfig(record_seconds=params["sim_record_seconds"], seed=params["sim_seed"]))
        specs, classes, source = dataprep.recordings("", sim_dir=sim_dir, sim_config=sim)
        train = sorted({s.subject for s in specs if s.split == "train"})
        evaluation = sorted({s.subject for s in specs if s.split != "train"})
        self.pools = subject_pools(train, evaluation, plan)
        for spec in specs:  # one split: every point takes its own subjects out of it
            spec.split = "train"
        t0 = time.perf_counter()
        self.store = build_store(self.out / "store", specs, classes, PreprocessConfig(notch_freq=params["notch_freq"],
                                                                                   val_fraction=0.0), source)
        print(f"store of the curves: {self.store.meta['shapes']['train'][0]} windows of {len(train) + len(evaluation)} "
              f"subjects ({time.perf_counter() - t0:.0f} s)")
        self.window_subject = window_subjects(self.store)
        self.n_classes = len(self.store.class_names)
        self.backbone, self.pretrain_config = load_denoiser(run_dir / "pretrain" / "ssmdp.ckpt")
        settings = LatentCache(run_dir / "cache").meta["settings"]
        self.cache_config = CacheConfig(**{k: settings[k] for k in ("t", "input_mode", "query", "reduction", "window")},
                                        batch_windows=params.get("batch_windows", 8))
        self.scheduler = ddpm_scheduler(self.pretrain_config.diffusion)
        self.pool = event_pool(self.store.window_samples)
        splits, view = self.point(self.pools["labelled"][:plan.base_labelled])  # every point has this test set
        atomic_write_json(self.out / "test_lines.json", test_lines(view, self.window_subject, splits))

    # ------------------------------------------------------------------ configs as notebook 40's
    def lft_config(self, n_layer: int, n_pool: int) -> LFTConfig:
        p = self.params
        return LFTConfig(d_model=self.pretrain_config.model.d_model, n_layer=n_layer, n_pool=n_pool,
                         n_tokens=p["lft_tokens"], n_heads=p["lft_heads"], n_final=p["lft_final_blocks"],
                         n_classes=self.n_classes, channel_norm=p["channel_norm"], channel_embed=p["channel_embed"],
                         init=p["lft_init"])

    def finetune(self, seed: int, fraction: float, batch: int) -> FinetuneConfig:
        p = self.params
        return FinetuneConfig(max_epochs=p["finetune_epochs"], warmup_epochs=p["warmup_epochs"], patience=p["patience"],
                              batch_size=batch, optim=finetune_optim(p["max_lr"]), seed=seed, label_fraction=fraction,
                              class_weight=p["class_weight"])

    # ------------------------------------------------------------------ latents
    def latents(self, backbone, subjects, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """(store window index [N], latents [N, n, P, K, H] float16) of every window of ``subjects``
        through ``backbone``, kept at ``path`` (.npy) and read back when there."""
        index = np.flatnonzero(np.isin(self.window_subject, sorted(subjects)))
        if path.exists():
            z = np.load(path, mmap_mode="r")
            if len(z) == len(index):
                return index, z
        t0 = time.perf_counter()
        view = FoldView(self.store, {"train": index})
        z = split_latents(backbone.to(self.device), view, "train", self.cache_config, self.scheduler,
                          self.pretrain_config.mu_law).astype(np.float16)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, z)
        tmp.replace(path)
        self.timed(f"latents {path.parent.name}/{path.stem}", time.perf_counter() - t0)
        print(f"  latents of {len(index)} windows -> {path.name} in {time.perf_counter() - t0:.0f} s")
        return index, np.load(path, mmap_mode="r")

    def timed(self, what: str, seconds: float) -> None:
        """Keep the wall time of a shared step (pretraining, latents) in RUN_DIR/scale/timings.json."""
        path = self.out / "timings.json"
        timings = read_json(path) if path.exists() else {}
        timings[what] = round(seconds, 1)
        atomic_write_json(path, timings)

    def point(self, subjects):
        splits = point_splits(self.window_subject, subjects, self.pools["test"], self.plan)
        return splits, FoldView(self.store, splits)

    @staticmethod
    def point_cache(index: np.ndarray, z: np.ndarray, splits: dict) -> ArrayCache:
        """One point's latents by split, from those of every window ``index``. The test latents come from the
        same float16 array as the training ones (notebook 40 recomputes them in float32; notebook 30
        measures the rounding: a largest error of about 1e-4)."""
        row = np.full(index.max() + 1, -1)
        row[index] = np.arange(len(index))
        return ArrayCache({s: np.asarray(z[row[np.sort(i)]], dtype=np.float32) for s, i in splits.items()})

    # ------------------------------------------------------------------ fits
    def fit_network(self, folder: Path, method: str, view, cache, fraction: float, seed: int) -> None:
        path = fit_path(folder, method, fraction, seed)
        if path.exists():
            return
        subset = label_subset(view.faithful("train")["label"], fraction, FinetuneConfig().label_seed)
        t0 = time.perf_counter()
        seed_everything(seed)
        fit_dir = path.parent / f"fit_seed_{seed}"
        if method == EEGNET:
            model, epochs, val_kappa = fit_eegnet(view, self.n_classes, self.pretrain_config.mu_law,
                                                  self.finetune(seed, fraction, 32), fit_dir, self.scale, subset)
            mu = staged_mu_law if self.pretrain_config.mu_law else None
            scores = network_scores(model, view.windows("test"), view.present("test"), transform=mu)
        else:
            z = cache.latents("train")
            model, epochs, val_kappa = fit_lft(cache, view, self.lft_config(z.shape[1], z.shape[2]),
                                               self.finetune(seed, fraction, self.params["lft_batch_size"]), fit_dir,
                                               self.scale, subset)
            scores = network_scores(model, cache.latents("test"), view.present("test"))
        lines = view.faithful("test")
        predicted = scores.argmax(1)
        record_fit(path, evaluate_lines(predicted, lines, self.n_classes), predicted[lines["window"]], val_kappa,
                   time.perf_counter() - t0, method=method, fraction=fraction, train_windows=_windows(view, subset),
                   epochs=epochs)
        shutil.rmtree(fit_dir, ignore_errors=True)  # checkpoints: the result file holds what the curves need

    def fit_readout(self, folder: Path, method: str, view, features: dict, fraction: float) -> None:
        path = fit_path(folder, method, fraction, None)
        if path.exists():
            return
        t0 = time.perf_counter()
        subset = label_subset(view.faithful("train")["label"], fraction, FinetuneConfig().label_seed)
        lines = {s: view.faithful(s) for s in ("train", "val", "test")}
        r = readout_run(features, lines, self.n_classes, subset, keep_predictions=True)
        record_fit(path, r, r["line_predictions"], r["val_kappa"], time.perf_counter() - t0, method=method,
                   fraction=fraction, train_windows=_windows(view, subset), C=r["C"])


def _windows(view, subset) -> int:
    """The training windows a fit saw (its label subset's lines, counted by window)."""
    return int(len(np.unique(view.faithful("train")["window"][subset])))


def labelled_curve(sweep: Sweep) -> None:
    plan, pools = sweep.plan, sweep.pools
    subjects = pools["labelled"] + pools["test"]
    index, pretrained = sweep.latents(sweep.backbone, subjects, sweep.out / "latents" / "labelled_pretrained.npy")
    _, untrained = sweep.latents(untrained_denoiser(sweep.pretrain_config), subjects,
                                 sweep.out / "latents" / "labelled_untrained.npy")
    for n in sorted(plan.labelled):
        t0 = time.perf_counter()
        folder = sweep.out / "labelled" / f"L{n}"
        splits, view = sweep.point(pools["labelled"][:n])
        caches = {"pretrained": sweep.point_cache(index, pretrained, splits),
                  "untrained": sweep.point_cache(index, untrained, splits)}
        features = {BAND_POWER: {s: band_power_features(view.windows(s), span=event_samples(view.window_samples))
                                 for s in splits},
                    PROBE: {s: cache_probe_features(caches["pretrained"].latents(s), sweep.pool) for s in splits},
                    PROBE_UNTRAINED: {s: cache_probe_features(caches["untrained"].latents(s), sweep.pool) for s in splits}}
        for method, f in features.items():
            sweep.fit_readout(folder, method, view, f, 1.0)
        for seed in plan.seeds:
            sweep.fit_network(folder, EEGDM, view, caches["pretrained"], 1.0, seed)
            sweep.fit_network(folder, EEGNET, view, None, 1.0, seed)
        if n == plan.base_labelled:  # curve 2's references at every label fraction: the untrained control, band powers
            reference = sweep.out / "unlabelled" / "reference"
            for fraction in plan.fractions:
                sweep.fit_readout(reference, BAND_POWER, view, features[BAND_POWER], fraction)
                for seed in plan.seeds:
                    sweep.fit_network(reference, UNTRAINED, view, caches["untrained"], fraction, seed)
        print(f"labelled subjects {n}: {len(splits['train'])} training windows, done in {time.perf_counter() - t0:.0f} s")


def unlabelled_curve(sweep: Sweep) -> None:
    plan, pools = sweep.plan, sweep.pools
    splits, view = sweep.point(pools["labelled"][:plan.base_labelled])
    for n in sorted(plan.unlabelled):
        for steps in sorted(plan.steps):
            t0 = time.perf_counter()
            folder = sweep.out / "unlabelled" / f"U{n}_s{steps}"
            todo = [fit_path(folder, m, f, s) for f in plan.fractions for m, s in
                    [(PROBE, None)] + [(EEGDM, s) for s in plan.seeds]]
            if all(p.exists() for p in todo):
                continue
            # one pretraining per number of subjects, extended from each step count to the next (constant
            # learning rate: the backbone at 800 steps of a 3,200-step run is the 800-step run's)
            pretrain_dir = sweep.out / "unlabelled" / f"U{n}_pretraining"
            _, pretrain_view = sweep.point(pools["unlabelled"][:n])
            t_pretrain = time.perf_counter()
            module, _ = train_ssmdp(pretrain_dir, pretrain_view, replace(sweep.pretrain_config, max_steps=steps),
                                    sweep.scale, val_every=max(1, steps // 4), ckpt_every=min(plan.steps), extend=True)
            if module.global_step != steps:
                raise SystemExit(f"{pretrain_dir}: holds {module.global_step} steps, not {steps}; delete it to rerun "
                                 "its step counts in order")
            if module.global_step > module.start_step:
                sweep.timed(f"pretraining U{n}: steps {module.start_step}-{steps}", time.perf_counter() - t_pretrain)
            backbone = load_denoiser(pretrain_dir / "pretrain" / "ssmdp.ckpt")[0]
            index, z = sweep.latents(backbone, pools["labelled"][:plan.base_labelled] + pools["test"],
                                     folder / "latents.npy")
            cache = sweep.point_cache(index, z, splits)
            probe = {s: cache_probe_features(cache.latents(s), sweep.pool) for s in splits}
            for fraction in plan.fractions:
                sweep.fit_readout(folder, PROBE, view, probe, fraction)
                for seed in plan.seeds:
                    sweep.fit_network(folder, EEGDM, view, cache, fraction, seed)
            (folder / "latents.npy").unlink(missing_ok=True)  # large; the fits hold what the curves need
            print(f"unlabelled subjects {n}, {steps} steps: done in {time.perf_counter() - t0:.0f} s")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("params", nargs="?", default="params/default.yaml")
    parser.add_argument("--labelled", nargs="+", type=int, default=list(ScalePlan.labelled))
    parser.add_argument("--unlabelled", nargs="+", type=int, default=list(ScalePlan.unlabelled))
    parser.add_argument("--steps", nargs="+", type=int, default=list(ScalePlan.steps))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(ScalePlan.seeds))
    parser.add_argument("--test-subjects", type=int, default=ScalePlan.test_subjects)
    parser.add_argument("--base-labelled", type=int, default=ScalePlan.base_labelled)
    parser.add_argument("--figures", default="figures")
    parser.add_argument("--curves", nargs="+", default=["labelled", "unlabelled"])
    parser.add_argument("--sim-dir", default=str(REPO / "data" / "sim_tuev"), help="where the simulated corpus is written")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    if not (run_dir / "pretrain" / "ssmdp.ckpt").exists() or not (run_dir / "cache").exists():
        raise SystemExit(f"{run_dir}: no backbone or cache; run `make run` (notebooks 10-30) first")
    params = yaml.safe_load((REPO / args.params).read_text())
    params = {**notebook_settings("10_data_prep", params), **notebook_settings("40_finetune_lft", params)}
    plan = ScalePlan(labelled=tuple(args.labelled), unlabelled=tuple(args.unlabelled), steps=tuple(args.steps),
                     seeds=tuple(args.seeds), test_subjects=args.test_subjects, base_labelled=args.base_labelled)
    t0 = time.perf_counter()
    sweep = Sweep(run_dir, params, plan, Path(args.sim_dir))
    if "labelled" in args.curves:
        labelled_curve(sweep)
    if "unlabelled" in args.curves:
        unlabelled_curve(sweep)
    report(sweep.out, sweep.store.class_names, Path(args.figures), plan)
    print(f"scale curves: {(time.perf_counter() - t0) / 60:.1f} min in this call")


def report(scale_dir: Path, class_names, figures_dir: Path, plan: ScalePlan = ScalePlan()) -> dict:
    """The table, the conclusions and the figures of whatever points have run; RUN_DIR/scale/summary.json
    (with the commit and CPU of this call) for RESULTS.md."""
    lines = read_json(scale_dir / "test_lines.json")
    timings = read_json(scale_dir / "timings.json") if (scale_dir / "timings.json").exists() else {}
    fits = collect(scale_dir)
    rows = summarise(fits, lines, len(class_names), class_names)
    info = run_info("", "scale-curves")
    summary = {"rows": rows, "conclusions": conclusions(rows, fits, lines, len(class_names), plan),
               "commit": info["commit"], "cpu": info["cpu"], "cores": info["cores"], "gathered": info["started"],
               "minutes": round(sum(r["minutes"] for r in rows), 1), "test_subjects": len(set(lines["subject"])),
               "shared_minutes": {k: round(v / 60, 1) for k, v in timings.items()}}
    atomic_write_json(scale_dir / "summary.json", summary)
    for r in rows:
        where = f"L{r['labelled']}" if r["curve"] == "labelled" else r["point"]
        print(f"{r['curve']:10s} {where:12s} {r['method']:36s} {r['fraction']:>4.0%}  kappa {r['kappa']:5.1f} "
              f"[{r['kappa_low']:5.1f}, {r['kappa_high']:5.1f}] ± {r['kappa_std']:.1f}  bal. acc {r['balanced_accuracy']:5.1f}"
              f"  ({r['train_windows']} windows, {r['minutes']:.1f} min)")
    print("shared steps (minutes): " + "; ".join(f"{k} {v}" for k, v in summary["shared_minutes"].items()))
    print("\n".join(summary["conclusions"]))
    figures.style()
    for path in plot_curves(rows, figures_dir / "scale_curves"):
        print("figure:", path)
    return summary


if __name__ == "__main__":
    main()
