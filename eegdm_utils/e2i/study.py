"""Notebook 85's experiment, one object: the image side it builds once, the methods it fine-tunes
on EEG, the baselines and controls, and every score on one set of single-trial test images.

:class:`Study` is built in the order the notebook teaches it:

1. ``Study(data, e2i_dir, device, mask_ratio, sampling)``: the paired data on the device, the validation
   and test images (one single trial each) and the stage-A encoders of notebook 80;
2. the image side, trained (or loaded when trained with the same settings) on training images only:
   :meth:`Study.fit_judge_and_embedder`, :meth:`Study.fit_structure`, :meth:`Study.pretrain_generator`,
   :meth:`Study.pretrain_controlnet`;
3. :meth:`Study.start_finetuning` with the fine-tuning settings, then the methods over seeds
   (:meth:`Study.run_methods`), DreamDiffusion's learning curve, the two-stage baseline, the
   SGDM-style contrastive branch, the class-level baseline and bound, each adding rows to
   ``Study.rows`` (a shuffled-EEG control beside every EEG method);
4. the table (:meth:`Study.summarise`), the acceptance check, the zero-shot section, the ablations
   and the metrics record.

Every choice of guidance scale and posterior temperature is made on the validation images
(``Study.selected``); the test images are scored once per seed.

Shape letters: I images, N trials, B batch, C channels, H height, W width, G layout grid side,
E image-embedding width, T context tokens, X context width.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression

from ..core.identity import array_fingerprint
from ..core.runtime import seed_everything
from . import pipeline
from .eeg_conditioning import ConditioningConfig, EEGConditioner
from .generator import ClassTokenGenerator, GeneratorConfig, make_controlnet, make_schedulers
from .image_models import ImageEmbedder, ImageNetConfig, Judge, batched, judge_loss, simclr_loss
from .image_side import (ImageSet, Stage, class_prompted, embedding_prompted, fit_class_token_generator,
                         fit_embedding_prompt, fit_image_model, fit_layout_controlnet)
from .masked_eeg import MaskedEEGModel, load_encoder
from .metrics import (chance_levels, derangement, layout_scores, pixel_correlation, reconstruction_metrics,
                      retrieval_top_k, ssim)
from .paired_data import HINT, PairedDataset
from .pipeline import EEGToImage, FinetuneSettings, ImageSide, Method, PairedTensors, ddim_sample
from .structure import BlockMeans, StructureAutoencoder, StructureConfig, fit_structure_autoencoder
from .training import RunRecord, train_or_load
from .two_stage import fit_ridge
from .visual_eeg import decoder_features, fit_linear_decoder

METRICS = ("top1_2way", "top1_5way", "top1_10way", "top1_10way_judged", "two_way_features", "two_way_within_class",
           "two_way_embedding", "pixcorr", "ssim", "frechet_small_sample")
SHOWN_METRICS = ("top1_10way", "two_way_features", "two_way_within_class", "pixcorr", "ssim")
ZERO_SHOT_METRICS = ("top1_10way", "two_way_features", "two_way_embedding", "two_way_within_class", "pixcorr", "ssim")
CONTRASTIVE = "SGDM-style: contrastive embedding prompt"
TWO_STAGE = "two-stage (ridge)"
DECODER = "linear decoder -> class prompt"
BOUND = "true-class prompt (bound)"
SAW, UNSEEN = "EEG side saw every class", "held-out classes unseen"


@dataclass
class Sampling:
    """How reconstructions are drawn and chosen (on validation)."""

    ddim_steps: int = 8
    guidance_scales: tuple = (1.0, 3.0)  # classifier-free guidance scales tried on validation
    temperatures: tuple = (0.5,)  # class-posterior temperatures tried on validation (semantic methods)


def _rounded(frame: pd.DataFrame) -> dict:
    return {r: {m: round(float(v), 4) for m, v in frame.loc[r].items()} for r in frame.index}


def _timed(key: str):
    """Decorator: the method's wall time into ``self.timings[key]``."""
    def wrap(method):
        def timed(self, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                self.timings[key] = time.perf_counter() - t0
        timed.__doc__, timed.__name__ = method.__doc__, method.__name__
        return timed
    return wrap


class Study:
    def __init__(self, data: PairedDataset, e2i_dir: str | Path, device: torch.device, mask_ratio: float,
                 sampling: Sampling, val_images: int = 40, test_images: int = 80):
        self.data, self.e2i_dir, self.device, self.mask_ratio = data, Path(e2i_dir), device, mask_ratio
        self.sampling = sampling
        self.encoder_paths = {float(p.stem.removeprefix("encoder_mask")): p
                              for p in sorted(self.e2i_dir.glob("encoder_mask*.pt"))}
        if mask_ratio not in self.encoder_paths:
            raise FileNotFoundError(f"{self.e2i_dir}/encoder_mask{mask_ratio}.pt: the pretrained EEG encoder is "
                                    f"missing; {HINT}")
        self.stimuli_np = data.images_chw()  # [I, C, H, W] (C = 1 grey, 3 RGB)
        self.image_size, self.n_classes = self.stimuli_np.shape[-1], data.n_classes
        self.data_id = array_fingerprint(data.split.split.astype("U5"), data.images)
        tensor = lambda a: torch.from_numpy(np.asarray(a)).to(device)
        self.images, self.labels, self.eeg = tensor(self.stimuli_np), tensor(data.labels), tensor(data.eeg)
        self.trial_image = tensor(data.table["image"])  # [N]
        self.train_images, self.train_trials = tensor(data.split.indices("train")), tensor(data.trials("train"))
        self.image_set = ImageSet(self.images, self.labels, self.train_images)  # what the image-side loops train on
        # one single trial per image, subjects taking turns
        self.val_images, self.val_trials = data.one_trial_per_image("val", val_images)
        self.test_images, self.test_trials = data.one_trial_per_image("test", test_images)
        self.rows, self.selected, self.timings = [], {}, {}

    def method(self, name: str, **switches) -> Method:
        """A method on the stage-A encoder pretrained with this study's mask ratio."""
        return Method(name, mask_ratio=self.mask_ratio, **switches)

    def describe_data(self) -> str:
        assert not set(self.test_images) & set(self.data.split.indices("train"))
        assert not set(self.val_images) & set(self.test_images)
        return (f"images {tuple(self.images.shape)} | trials {tuple(self.eeg.shape)} | training trials "
                f"{len(self.train_trials)}\nscored: {len(self.val_images)} validation and {len(self.test_images)} "
                f"test images, one single trial each\npretrained encoders (mask ratio): {sorted(self.encoder_paths)}")

    # ---- the image side (images only) -------------------------------------------------------------
    def _fit_or_load(self, file: str, module, record: RunRecord, fit) -> dict:
        return train_or_load(self.e2i_dir / file, record, module, fit)

    def _record(self, name: str, **settings) -> RunRecord:
        return RunRecord(name, {**settings, "data": self.data_id})

    @_timed("judge_embedder_s")
    def fit_judge_and_embedder(self, judge_steps: int, embedder_steps: int, seed: int) -> str:
        """The judge (a classifier that scores reconstructions) and the contrastive image embedder (the
        CLIP stand-in, no labels), on the training images; returns their test accuracies as a line."""
        seed_everything(seed)
        config = ImageNetConfig(n_classes=self.n_classes, image_channels=self.data.image_channels)
        models = {}
        for file, make, loss, steps in (("judge.pt", Judge, judge_loss, judge_steps),
                                        ("embedder.pt", ImageEmbedder, lambda m, x, y, g: simclr_loss(m, x, g),
                                         embedder_steps)):
            model = models[file] = make(config).to(self.device)  # the embedder's weights drawn after the judge's fit
            record = self._record(file.removesuffix(".pt"), config=asdict(model.config), steps=steps, seed=seed)
            self._fit_or_load(file, model, record, lambda: fit_image_model(model, loss, self.image_set,
                                                                           Stage(steps, 128, 2.0e-3, seed)))
            model.eval().requires_grad_(False)
        self.judge, self.embedder = models["judge.pt"], models["embedder.pt"]
        stimuli = self.images[self._on_device(self.test_images)]
        logits = batched(self.judge, stimuli)
        self.stimulus_probs = logits.softmax(-1).cpu().numpy()
        self.stimulus_features = batched(self.judge.features, stimuli).cpu().numpy()
        self.image_embeddings = batched(self.embedder, self.images)  # [I, E], frozen targets of the alignment
        self.embeddings_np = self.image_embeddings.cpu().numpy()
        # scored on the test images of classes with training images (none in THINGS' zero-shot test)
        train = self.data.split.indices("train")
        known = np.isin(self.data.labels[self.test_images], self.data.labels[train])
        correct = logits.argmax(-1).cpu().numpy() == self.data.labels[self.test_images]
        self.judge_accuracy = float(correct[known].mean()) if known.any() else float("nan")
        probe = float("nan")
        if known.any():
            e, test = self.embeddings_np, self.test_images[known]
            probe = float(LogisticRegression(max_iter=2000).fit(e[train], self.data.labels[train])
                          .score(e[test], self.data.labels[test]))
        assert not known.any() or self.judge_accuracy > 0.8, "the judge cannot judge: train it longer"
        return (f"judge accuracy on the real test images {self.judge_accuracy:.3f}; linear probe of the embedder "
                f"(no labels in its training) {probe:.3f}")

    @_timed("structure_s")
    def fit_structure(self, kind: str, grid: int, steps: int, seed: int) -> str:
        """The structure code every image gets (``autoencoder``: SGDM-style, structurally supervised;
        ``block_mean``: block averages); returns how well the test images' maps match the images."""
        if kind == "autoencoder":
            seed_everything(seed)
            config = StructureConfig(grid=grid, image_size=self.image_size, image_channels=self.data.image_channels)
            self.structure = StructureAutoencoder(config).to(self.device)
            self.structure_record = self._record("structure autoencoder", config=asdict(self.structure.config),
                                                 steps=steps, seed=seed)
            self._fit_or_load("structure_autoencoder.pt", self.structure, self.structure_record,
                              lambda: fit_structure_autoencoder(self.structure, self.images, self.train_images,
                                                                steps, 128, seed))
        elif kind == "block_mean":
            self.structure = BlockMeans(grid, self.image_size).to(self.device)
            self.structure_record = RunRecord("block means", {"grid": grid})
        else:
            raise ValueError(f"e2i_structure={kind!r}: expected 'autoencoder' or 'block_mean'")
        self.structure_kind, self.grid = kind, grid
        self.structure.eval().requires_grad_(False)
        self.layouts = batched(self.structure.encode, self.images)  # [I, G, G]
        self.mean_layout = self.layouts[self.train_images].mean(dim=0)  # [G, G]
        test_layouts = self.layouts[self._on_device(self.test_images)]
        self.test_maps = batched(self.structure, test_layouts)[:, 0].cpu().numpy()  # [B, H, W]
        self.grey_test = self.stimuli_np[self.test_images].mean(axis=1)  # maps are grey-level
        return (f"structure code {kind}, {grid}x{grid}: PixCorr of the test images' maps with the images "
                f"{pixel_correlation(self.test_maps, self.grey_test):.3f}, "
                f"SSIM {ssim(self.test_maps, self.grey_test):.3f}")

    @_timed("generator_pretrain_s")
    def pretrain_generator(self, unet_channels, steps: int, lr: float, batch: int, cond_dropout: float,
                           seed: int) -> str:
        """Stage B: the class-token UNet pretrained on the training images (the text-to-image stand-in)."""
        # the null prompt is tiled over a context of EEG tokens + prompt tokens, so the prompt's length must
        # divide the encoder's token count (16 simulated, 10 for THINGS' 100-sample trials): 4 tokens, or fewer
        tokens = load_encoder(self.encoder_paths[self.mask_ratio], HINT)[0].config.n_tokens
        self.generator_config = GeneratorConfig(
            image_size=self.image_size, image_channels=self.data.image_channels, n_classes=self.n_classes,
            prompt_tokens=max(t for t in range(1, 5) if tokens % t == 0),
            block_out_channels=tuple(int(c) for c in unet_channels), norm_num_groups=8)
        self.ddpm, self.ddim = make_schedulers(self.generator_config)
        seed_everything(seed)
        self.base = ClassTokenGenerator(self.generator_config).to(self.device)
        self.generator_record = self._record("class-token UNet", config=asdict(self.generator_config), steps=steps,
                                             lr=lr, batch=batch, seed=seed, dropout=cond_dropout)
        self.generator_run = self._fit_or_load("generator_pretrained.pt", self.base, self.generator_record,
                                               lambda: fit_class_token_generator(
                                                   self.base, self.ddpm, self.image_set,
                                                   Stage(steps, batch, lr, seed, cond_dropout)))
        self.base.eval().requires_grad_(False)
        return (f"UNet: {sum(p.numel() for p in self.base.unet.parameters()):,} parameters; final loss "
                f"{self.generator_run['history']['loss'][-1]:.4f}")

    @_timed("controlnet_pretrain_s")
    def pretrain_controlnet(self, steps: int, batch: int, cond_dropout: float, seed: int) -> None:
        """The layout ControlNet, initialised from the UNet, trained on (degraded) layouts of real images."""
        seed_everything(seed)
        self.controlnet = make_controlnet(self.base.unet).to(self.device)
        record = RunRecord("layout ControlNet", {
            "generator": self.generator_record.settings, "steps": steps, "batch": batch, "seed": seed,
            "data": self.data_id, "structure": {"name": self.structure_record.name, **self.structure_record.settings}})
        self._fit_or_load("controlnet_pretrained.pt", self.controlnet, record, lambda: fit_layout_controlnet(
            self.controlnet, self.base, self.ddpm, replace(self.image_set, layouts=self.layouts),
            Stage(steps, batch, 1.0e-3, seed + 1, cond_dropout), structure=self.structure))
        self.controlnet.eval().requires_grad_(False)
        self.image_side = ImageSide(self.base, self.controlnet, self.ddpm, self.ddim)

    def prompt_following(self, guidance_scale: float = 3.0, per_class: int = 20):
        """Class-prompted samples of the pretrained generator (the first 10 classes) and the fraction
        the judge calls their class: (samples [classes, per_class, C, H, W], accuracy)."""
        shown = min(self.n_classes, 10)
        prompts = torch.arange(shown, device=self.device).repeat_interleave(per_class)
        drawn = class_prompted(self.base, self.ddim, prompts, guidance_scale, 0, self.sampling.ddim_steps)
        self.prompt_accuracy = float((batched(self.judge, drawn).argmax(-1) == prompts).float().mean())
        return drawn.view(shown, per_class, *drawn.shape[1:]), self.prompt_accuracy

    def controlnet_follows_layouts(self, guidance_scale: float = 3.0) -> pd.DataFrame:
        """PixCorr and SSIM of class-prompted test images with and without their true layout."""
        index = self._on_device(self.test_images)
        truth = self.stimuli_np[self.test_images]
        follow = {}
        for name, with_layout in (("class prompt only", False), ("class prompt + true layout", True)):
            drawn = class_prompted(self.base, self.ddim, self.labels[index], guidance_scale, 60_000,
                                   self.sampling.ddim_steps, self.controlnet,
                                   self.layouts[index] if with_layout else None, self.structure).cpu().numpy()
            follow[name] = {"pixcorr": pixel_correlation(drawn, truth), "ssim": ssim(drawn, truth)}
        follow["the true layout's map alone (no generator)"] = {
            "pixcorr": pixel_correlation(self.test_maps, self.grey_test), "ssim": ssim(self.test_maps, self.grey_test)}
        self.follow = pd.DataFrame(follow).T
        self.controlnet_follows = bool(self.follow.loc["class prompt + true layout", "pixcorr"]
                                       > self.follow.loc["class prompt only", "pixcorr"] + 0.05)
        return self.follow

    # ---- fine-tuning on EEG -----------------------------------------------------------------------
    def start_finetuning(self, settings: FinetuneSettings) -> dict:
        """The fine-tuning settings and the paired tensors; returns the loss parts of one batch at the start."""
        self.settings = settings
        self.paired = PairedTensors(self.images, self.labels, self.layouts, self.image_embeddings, self.eeg,
                                    self.trial_image)
        val_stimuli = self.images[self._on_device(self.val_images)]
        self.val_probs = batched(self.judge, val_stimuli).softmax(-1).cpu().numpy()
        self.val_features = batched(self.judge.features, val_stimuli).cpu().numpy()
        both = self.method("both", semantic=True, structural=True)
        probe = EEGToImage(both, self.new_conditioner(self.method("both")), self.image_side).to(self.device)
        _, parts = pipeline.finetune_loss(probe, self.paired, self.train_trials[:8], self.ddpm, settings,
                                          torch.Generator(device=self.device).manual_seed(0), True)
        self.trainable_unet = probe.trainable_unet
        return {k: round(float(v), 3) for k, v in parts.items()}

    def new_conditioner(self, method: Method) -> EEGConditioner:
        """The EEG side of ``method``: its stage-A encoder (or the same architecture and input scaling
        with random weights) and fresh heads."""
        encoder, _ = load_encoder(self.encoder_paths[method.mask_ratio], HINT)
        if not method.pretrained:
            untrained = MaskedEEGModel(encoder.config)
            untrained.input_mean.copy_(encoder.input_mean)
            untrained.input_std.copy_(encoder.input_std)
            encoder = untrained
        return EEGConditioner(encoder, ConditioningConfig(
            eeg_tokens=method.eeg_tokens, semantic=method.semantic, structural=method.structural,
            encoder_dim=encoder.config.dim, n_tokens=encoder.config.n_tokens,
            context_dim=self.generator_config.context_dim, embed_dim=self.image_embeddings.shape[1],
            n_classes=self.n_classes, layout_grid=self.grid, image_size=self.image_size),
            self.structure).to(self.device)

    def warm_up(self, method: Method, seed: int, trials=None) -> EEGConditioner:
        trials = self.train_trials if trials is None else self._on_device(trials)
        return pipeline.warm_up(method, self.new_conditioner, self.paired, trials, self.image_side, self.settings, seed)

    def finetune(self, method: Method, conditioner: EEGConditioner, seed: int) -> EEGToImage:
        return pipeline.finetune(method, conditioner, self.paired, self.train_trials, self.image_side, self.settings,
                                 seed, checkpoint_dir=self.e2i_dir / "finetuned", checkpoint_extra={
                                     "base": "generator_pretrained.pt", "controlnet": "controlnet_pretrained.pt"})

    def reconstruct(self, model: EEGToImage, trials, guidance_scale: float, seed: int, semantic: bool = True,
                    structural: bool = True, repeats: int = 1) -> torch.Tensor:
        return pipeline.reconstruct(model, self.paired, trials, guidance_scale, seed, self.ddim,
                                    self.sampling.ddim_steps, semantic, structural, repeats)

    def sample(self, unet, context, null_context, guidance_scale: float, seed: int, controlnet=None, control=None):
        """Images [B, C, H, W] for contexts [B, T, X] with this study's DDIM steps."""
        return ddim_sample(unet, self.ddim, context, null_context, guidance_scale, seed, self.image_size,
                           self.sampling.ddim_steps, controlnet, control)

    def class_prompt(self, classes: torch.Tensor, guidance_scale: float, seed: int) -> torch.Tensor:
        return class_prompted(self.base, self.ddim, classes, guidance_scale, seed, self.sampling.ddim_steps)

    # ---- scoring ----------------------------------------------------------------------------------
    def _on_device(self, index) -> torch.Tensor:
        return torch.as_tensor(index, device=self.device)

    @torch.no_grad()
    def score(self, reconstructions: torch.Tensor, which_images: np.ndarray, stimulus_probs: np.ndarray,
              stimulus_features: np.ndarray) -> dict:
        """Every metric (and its test-set sampling error, ``<metric>_se``) of reconstructions of ``which_images``."""
        probs = batched(self.judge, reconstructions).softmax(-1).cpu().numpy()
        feats = batched(self.judge.features, reconstructions).cpu().numpy()
        return reconstruction_metrics(
            probs, feats, reconstructions.cpu().numpy(), stimulus_probs, stimulus_features,
            self.stimuli_np[which_images], self.data.labels[which_images],
            embeddings=batched(self.embedder, reconstructions).cpu().numpy(),
            stimulus_embeddings=self.embeddings_np[which_images])

    def score_test(self, reconstructions: torch.Tensor) -> dict:
        return self.score(reconstructions, self.test_images, self.stimulus_probs, self.stimulus_features)

    def score_val(self, reconstructions: torch.Tensor) -> dict:
        return self.score(reconstructions, self.val_images, self.val_probs, self.val_features)

    def add_rows(self, name: str, seed: int, reconstructions: torch.Tensor, shuffled: bool = True) -> None:
        """The test scores of ``name``, and (``shuffled``) of its control: the same reconstructions
        paired with the wrong stimuli (a derangement drawn from ``seed``)."""
        self.rows.append({"method": name, "seed": seed, **self.score_test(reconstructions)})
        if shuffled:
            wrong = self._on_device(derangement(len(reconstructions), seed))
            self.rows.append({"method": f"{name}, shuffled EEG", "seed": seed,
                              **self.score_test(reconstructions[wrong])})

    def select(self, name: str, make, temperatures=(1.0,)) -> None:
        """Once per method: the guidance scale (and posterior temperature) with the best validation
        10-way top-1, then 2-way; ``make(scale, temperature)`` draws the validation reconstructions."""
        if name in self.selected:
            return
        scores = {(s, tau): self.score_val(make(s, tau)) for s in self.sampling.guidance_scales for tau in temperatures}
        best = max(scores, key=lambda k: (round(scores[k]["top1_10way"], 4), scores[k]["two_way_features"]))
        self.selected[name] = {"guidance_scale": best[0], "temperature": best[1], "val_top1_10way": {
            f"scale {s}, T {tau}": round(v["top1_10way"], 4) for (s, tau), v in scores.items()}}

    def scale(self, name: str) -> float:
        return self.selected[name]["guidance_scale"]

    # ---- the methods, baselines and controls ------------------------------------------------------
    @_timed("methods_s")
    def run_methods(self, methods: list[Method], seeds: list[int], log=print) -> None:
        """Per seed: one EEG-side warm-up shared by the methods, each method fine-tuned from it, chosen
        on validation (first seed), scored on test with its shuffled-EEG control; the unconditional
        generator as a control."""
        self.methods, self.seeds = methods, seeds
        self.first_seed_models, self.shared_conditioners = {}, {}
        for seed in seeds:
            t1 = time.perf_counter()
            conditioner = self.shared_conditioners[seed] = self.warm_up(self.method("shared"), seed)
            log(f"seed {seed}: EEG-side warm-up {time.perf_counter() - t1:.0f} s")
            for method in methods:
                t1 = time.perf_counter()
                model = self.finetune(method, conditioner, seed)
                self.select(method.name, lambda s, tau: self.reconstruct(self._tuned(model, tau), self.val_trials, s,
                                                                         seed=10_000 + seed),
                            self.sampling.temperatures if method.semantic else (1.0,))
                model.temperature = self.selected[method.name]["temperature"]
                self.add_rows(method.name, seed, self.reconstruct(model, self.test_trials, self.scale(method.name),
                                                                  seed=20_000 + seed))
                if seed == seeds[0]:
                    self.first_seed_models[method.name] = model
                own, control = self.rows[-2], self.rows[-1]
                log(f"seed {seed} {method.name:16s} scale {self.scale(method.name)}, "
                    f"T {self.selected[method.name]['temperature']}: top-1 10-way {own['top1_10way']:.3f} "
                    f"(shuffled {control['top1_10way']:.3f}), 2-way {own['two_way_features']:.3f}  "
                    f"[{time.perf_counter() - t1:.0f} s]")
            null = self.base.null_context(len(self.test_trials))
            self.add_rows("unconditional", seed, self.sample(self.base.unet, null, null, 1.0, seed=30_000 + seed),
                          shuffled=False)

    @staticmethod
    def _tuned(model: EEGToImage, temperature: float) -> EEGToImage:
        model.temperature = temperature
        return model

    @_timed("curve_s")
    def dreamdiffusion_curve(self, steps) -> pd.DataFrame:
        """DreamDiffusion fine-tuned from the first seed's warm-up, scored on validation after each of
        ``steps``: the diffusion loss with and without the EEG context, and 10-way top-1. No steps: an
        empty curve (nothing is trained)."""
        if not len(steps):
            self.curve = pd.DataFrame()
            return self.curve
        seed = self.seeds[0]
        val = self._on_device(self.val_trials)

        def point(model, n):
            gap = pipeline.context_loss_gap(model, self.paired, val, self.ddpm, seed=50_000)
            recon = self.reconstruct(model, self.val_trials, self.scale("DreamDiffusion"), seed=10_000 + seed)
            return {**gap, "val_top1_10way": self.score_val(recon)["top1_10way"]}

        steps = sorted(int(n) for n in steps)
        model = pipeline.finetune(self.methods[0], self.shared_conditioners[seed], self.paired, self.train_trials,
                                  self.image_side, self.settings, seed, steps=max(steps), evaluate=point,
                                  evaluate_at=steps)
        self.curve = pd.DataFrame(model.evaluations).set_index("step")
        return self.curve

    def _trial_embeddings(self, trials) -> np.ndarray:
        return self.embeddings_np[self.data.table["image"][trials]]

    def _features(self, trials) -> np.ndarray:
        return decoder_features(self.data.eeg[trials])

    def _trial_labels(self, trials) -> np.ndarray:
        return self.data.labels[self.data.table["image"][trials]]

    @_timed("two_stage_s")
    def run_two_stage(self) -> str:
        """The two-stage baseline: ridge regression from EEG to the image embedding (penalty chosen on
        validation), then a generator prompted with the embedding (fine-tuned per seed on images)."""
        train, val = self.data.trials("train"), self.data.trials("val")
        self.ridge, self.ridge_alpha, scores = fit_ridge(self._features(train), self._trial_embeddings(train),
                                                         self._features(val), self._trial_embeddings(val))
        self.two_stage_models = {}
        for seed in self.seeds:
            gen, adapter = self.two_stage_models[seed] = fit_embedding_prompt(
                self.base, self.ddpm, replace(self.image_set, embeddings=self.image_embeddings),
                Stage(self.settings.steps, self.settings.batch, self.settings.lr, seed, self.settings.cond_dropout))
            self.select(TWO_STAGE, lambda s, tau: self.two_stage_reconstruct(gen, adapter, self.val_trials, s,
                                                                             10_000 + seed))
            self.add_rows(TWO_STAGE, seed, self.two_stage_reconstruct(gen, adapter, self.test_trials,
                                                                      self.scale(TWO_STAGE), 20_000 + seed))
        return f"ridge penalty {self.ridge_alpha:g} (validation mean cosine {scores[self.ridge_alpha]:.3f})"

    def ridge_embedding(self, trials) -> torch.Tensor:
        return torch.from_numpy(self.ridge.predict(self._features(trials)).astype(np.float32)).to(self.device)

    def two_stage_reconstruct(self, gen, adapter, trials, guidance_scale: float, seed: int) -> torch.Tensor:
        return embedding_prompted(gen, adapter, self.ddim, self.ridge_embedding(trials), guidance_scale, seed,
                                  self.sampling.ddim_steps)

    @torch.no_grad()
    def eeg_embedding(self, conditioner: EEGConditioner, trials) -> torch.Tensor:
        return conditioner.eval()(self.eeg[self._on_device(trials)]).image_embedding

    @_timed("contrastive_s")
    def run_contrastive(self) -> pd.DataFrame:
        """SGDM's semantic branch: an EEG embedding aligned with InfoNCE, scored by retrieval among the
        test images (beside stage C's 1 - cos embedding and the ridge), and used as the prompt of the
        two-stage generator. Returns retrieval top-1/top-5, mean and std over seeds."""
        candidates = self.embeddings_np[self.test_images]  # [B, E]
        own = np.arange(len(self.test_images))
        rows, self.contrastive_conditioners = [], {}
        self.contrastive = self.method("SGDM-style (contrastive)", contrastive=True)
        for seed in self.seeds:
            conditioner = self.contrastive_conditioners[seed] = self.warm_up(self.contrastive, seed)
            predictions = {"contrastive (InfoNCE) warm-up": self.eeg_embedding(conditioner, self.test_trials),
                           "1 - cos warm-up (stage C)": self.eeg_embedding(self.shared_conditioners[seed],
                                                                           self.test_trials),
                           "ridge (two-stage)": self.ridge_embedding(self.test_trials)}
            for name, prediction in predictions.items():
                rows.append({"EEG -> image embedding": name, "seed": seed, **{
                    f"top-{k}": retrieval_top_k(prediction.cpu().numpy(), candidates, own, k) for k in (1, 5)}})
            gen, adapter = self.two_stage_models[seed]
            prompt = lambda trials, s, sampling_seed: embedding_prompted(
                gen, adapter, self.ddim, self.eeg_embedding(conditioner, trials), s, sampling_seed,
                self.sampling.ddim_steps)
            self.select(CONTRASTIVE, lambda s, tau: prompt(self.val_trials, s, 10_000 + seed))
            self.add_rows(CONTRASTIVE, seed, prompt(self.test_trials, self.scale(CONTRASTIVE), 20_000 + seed))
        self.retrieval = (pd.DataFrame(rows).groupby("EEG -> image embedding", sort=False)[["top-1", "top-5"]]
                          .agg(["mean", "std"]))
        return self.retrieval

    @_timed("class_prompt_s")
    def run_class_prompts(self) -> str:
        """The class-level baseline (a linear decoder's class as the prompt) and the bound (the true class)."""
        train, val = self.data.trials("train"), self.data.trials("val")
        self.decoder, self.decoder_penalty, scores = fit_linear_decoder(
            self.data.eeg[train], self._trial_labels(train), self.data.eeg[val], self._trial_labels(val))
        decoded = torch.from_numpy(self.decoder.predict(self._features(self.test_trials))).to(self.device)
        self.decoder_accuracy = float((decoded.cpu().numpy() == self.data.labels[self.test_images]).mean())
        val_decoded = torch.from_numpy(self.decoder.predict(self._features(self.val_trials))).to(self.device)
        self.select(DECODER, lambda s, tau: self.class_prompt(val_decoded, s, 10_000))
        self.select(BOUND, lambda s, tau: self.class_prompt(self.labels[self._on_device(self.val_images)], s, 10_000))
        truth = self.labels[self._on_device(self.test_images)]
        for seed in self.seeds:
            self.add_rows(DECODER, seed, self.class_prompt(decoded, self.scale(DECODER), 20_000 + seed), shuffled=False)
            self.add_rows(BOUND, seed, self.class_prompt(truth, self.scale(BOUND), 20_000 + seed), shuffled=False)
        return (f"linear decoder (C {self.decoder_penalty:g}, validation accuracy {scores[self.decoder_penalty]:.3f}): "
                f"single-trial test accuracy {self.decoder_accuracy:.3f}")

    # ---- the table --------------------------------------------------------------------------------
    def summarise(self) -> pd.DataFrame:
        """Mean and std over seeds of every metric, each method with its shuffled-EEG control right
        below it, then the class-level baseline, the controls and the bound; returns the printed table."""
        self.results = pd.DataFrame(self.rows)
        self.metric_names = [m for m in METRICS if m in self.results]  # within-class needs two images of a class
        order = [row for name in [m.name for m in self.methods] + [CONTRASTIVE, TWO_STAGE]
                 for row in (name, f"{name}, shuffled EEG")]
        self.order = order + [DECODER, "unconditional", BOUND]
        summary = self.results.groupby("method")[self.metric_names].agg(["mean", "std"])
        summary.columns = [f"{m}_{s}" for m, s in summary.columns]
        self.summary = summary.loc[self.order]
        self.chance = chance_levels()
        cell = (lambda r, m: f"{self.summary.loc[r, m + '_mean']:.3f} ± {self.summary.loc[r, m + '_std']:.3f}") \
            if len(self.seeds) > 1 else (lambda r, m: f"{self.summary.loc[r, m + '_mean']:.3f}")
        table = pd.DataFrame({m: [cell(r, m) for r in self.order] for m in self.metric_names}, index=self.order)
        table.loc["chance"] = [f"{self.chance[m]:.3f}" if m in self.chance else "" for m in self.metric_names]
        errors = [f"{m}_se" for m in self.metric_names if m != "frechet_small_sample"]
        self.sampling_error = self.results.groupby("method")[errors].mean().loc[self.order]
        self.sampling_error.columns = [c.removesuffix("_se") for c in self.sampling_error.columns]
        return table

    def shown_metrics(self) -> list[str]:
        return [m for m in SHOWN_METRICS if m in self.metric_names]

    def acceptance(self) -> dict:
        """Does each EEG method beat its shuffled-EEG control on 10-way top-1 and 2-way identification
        by more than the seed std? (``beats_control`` None with one seed: no spread to beat.)"""
        self.verdict = {}
        for name in [m.name for m in self.methods[1:]]:
            for metric in ("top1_10way", "two_way_features"):
                own = self.results[self.results.method == name][metric].to_numpy()
                shuffled = self.results[self.results.method == f"{name}, shuffled EEG"][metric].to_numpy()
                margin = own.mean() - shuffled.mean()
                spread = max(own.std(ddof=1), shuffled.std(ddof=1)) if len(self.seeds) > 1 else float("nan")
                beats = bool(margin > spread) if len(self.seeds) > 1 else None
                self.verdict[f"{name} / {metric}"] = {"margin": round(float(margin), 4),
                                                      "seed_std": round(float(spread), 4), "beats_control": beats}
        return self.verdict

    # ---- classes the EEG side never saw -----------------------------------------------------------
    def zero_shot(self, unseen: list[int]) -> bool:
        """Retrain the EEG side without the classes ``unseen`` and reconstruct their test images, beside
        the EEG side that saw them. False (and nothing run) with fewer than two such test images."""
        self.unseen = [int(c) for c in unseen]
        self.held_out = np.isin(self.data.labels[self.test_images], self.unseen)
        if not self.unseen or self.held_out.sum() < 2:
            self.unseen = []
            return False
        t0 = time.perf_counter()
        trial_class = self._trial_labels(np.arange(len(self.data.eeg)))
        train, val = self.data.trials("train"), self.data.trials("val")
        seen_train, seen_val = (t[~np.isin(trial_class[t], self.unseen)] for t in (train, val))
        self.seen_train_trials, self.all_train_trials = len(seen_train), len(train)
        images, trials = self.test_images[self.held_out], self.test_trials[self.held_out]
        probs, features = self.stimulus_probs[self.held_out], self.stimulus_features[self.held_out]
        candidates, own = self.embeddings_np[images], np.arange(len(images))
        ridge_seen, _, _ = fit_ridge(self._features(seen_train), self._trial_embeddings(seen_train),
                                     self._features(seen_val), self._trial_embeddings(seen_val))
        decoder_seen, _, _ = fit_linear_decoder(self.data.eeg[seen_train], self._trial_labels(seen_train),
                                                self.data.eeg[seen_val], self._trial_labels(seen_val))
        rows, retrieval = [], []
        for seed in self.seeds:
            gen, adapter = self.two_stage_models[seed]
            conditioner_seen = self.warm_up(self.contrastive, seed, seen_train)
            eeg_side = {TWO_STAGE: {True: self.ridge_embedding(trials).cpu().numpy(),
                                    False: ridge_seen.predict(self._features(trials))},
                        CONTRASTIVE: {
                            True: self.eeg_embedding(self.contrastive_conditioners[seed], trials).cpu().numpy(),
                            False: self.eeg_embedding(conditioner_seen, trials).cpu().numpy()}}
            for name, by_training in eeg_side.items():
                for saw, embedding in by_training.items():
                    row = f"{name}, {SAW if saw else UNSEEN}"
                    retrieval.append({"EEG -> image embedding": row, "seed": seed, **{
                        f"top-{k}": retrieval_top_k(embedding, candidates, own, k) for k in (1, 5)}})
                    recon = embedding_prompted(gen, adapter, self.ddim, torch.from_numpy(np.asarray(
                        embedding, dtype=np.float32)).to(self.device), self.scale(name), 20_000 + seed,
                        self.sampling.ddim_steps)
                    rows.append({"method": row, "seed": seed, **self.score(recon, images, probs, features)})
                    if not saw:
                        wrong = self._on_device(derangement(len(recon), seed))
                        rows.append({"method": f"{row}, shuffled EEG", "seed": seed,
                                     **self.score(recon[wrong], images, probs, features)})
            for saw, model in ((True, self.decoder), (False, decoder_seen)):
                classes = torch.from_numpy(model.predict(self._features(trials))).to(self.device)
                recon = self.class_prompt(classes, self.scale(DECODER), 20_000 + seed)
                rows.append({"method": f"{DECODER}, {SAW if saw else UNSEEN}", "seed": seed,
                             **self.score(recon, images, probs, features)})
        metrics = [m for m in ZERO_SHOT_METRICS if m in self.metric_names]
        self.zero_shot_table = pd.DataFrame(rows).groupby("method", sort=False)[metrics].mean()
        self.zero_shot_retrieval = (pd.DataFrame(retrieval).groupby("EEG -> image embedding", sort=False)
                                    [["top-1", "top-5"]].mean())
        self.timings["zero_shot_s"] = time.perf_counter() - t0
        return True

    # ---- ablations --------------------------------------------------------------------------------
    @_timed("ablations_s")
    def ablations(self, seeds: list[int], log=print) -> pd.DataFrame:
        """The structure-guided model without pretraining, without alignment and with the other mask
        ratios (retrained), with an oracle structure code, and with guidance or a branch switched off
        at sampling time (the same model). Returns the mean over ``seeds``."""
        reference = self.methods[1]  # structure-guided
        self.ablation_reference = f"{reference.name} (mask {self.mask_ratio}, all on)"
        variants = [replace(reference, name="no pretraining", pretrained=False),
                    replace(reference, name="no alignment", align=False)]
        variants += [replace(reference, name=f"mask ratio {r}", mask_ratio=r)
                     for r in sorted(self.encoder_paths) if r != self.mask_ratio]
        scale, tau = self.scale(reference.name), self.selected[reference.name]["temperature"]
        test_layouts = self.layouts[self._on_device(self.test_images)]
        rows = []
        for seed in seeds:
            own = [r for r in self.rows if r["method"] == reference.name and r["seed"] == seed]
            full = self.first_seed_models[reference.name] if seed == self.seeds[0] else \
                self.finetune(reference, self.warm_up(reference, seed), seed)
            full.temperature = tau
            if own:
                rows.append({**own[0], "method": self.ablation_reference})
            for variant in variants:
                model = self._tuned(self.finetune(variant, self.warm_up(variant, seed), seed), tau)
                rows.append({"method": variant.name, "seed": seed,
                             **self.score_test(self.reconstruct(model, self.test_trials, scale, 20_000 + seed))})
            with torch.no_grad():
                readout = full.conditioner(self.eeg[self._on_device(self.test_trials)])
            self.layout = layout_scores(readout.layout.cpu().numpy(), test_layouts.cpu().numpy(),
                                        self.mean_layout.cpu().numpy())
            log(f"seed {seed}: EEG-predicted vs true {self.grid}x{self.grid} structure code (test): correlation "
                f"{self.layout['correlation']:.3f} (the mean training code for every image: "
                f"{self.layout['mean_layout_correlation']:.3f}); R^2 {self.layout['r2']:.3f}, against the mean "
                f"layout {self.layout['r2_vs_mean_layout']:.3f}")
            context = full.conditioner.context(readout, full.generator, True, tau)
            null = full.generator.null_context(len(context), context.shape[1])
            oracle = self.sample(full.generator.unet, context, null, scale, 20_000 + seed, full.controlnet,
                                 self.structure(test_layouts))
            rows.append({"method": "oracle structure code (not from EEG)", "seed": seed, **self.score_test(oracle)})
            for label, kwargs in (("no classifier-free guidance", {"guidance_scale": 1.0}),
                                  ("semantic branch off", {"semantic": False}),
                                  ("structural branch off", {"structural": False})):
                recon = self.reconstruct(full, self.test_trials, kwargs.pop("guidance_scale", scale),
                                         seed=20_000 + seed, **kwargs)
                rows.append({"method": label, "seed": seed, **self.score_test(recon)})
        self.ablation_table = pd.DataFrame(rows).groupby("method", sort=False)[self.metric_names].mean()
        return self.ablation_table

    # ---- what the notebook writes and concludes ---------------------------------------------------
    def metrics_record(self) -> dict:
        """Everything the notebook measured, for ``metrics.json``."""
        def mean_std(r, m):
            std = self.summary.loc[r, m + "_std"]
            return {"mean": round(float(self.summary.loc[r, m + "_mean"]), 4),
                    "std": None if np.isnan(std) else round(float(std), 4)}

        retrieval = self.retrieval
        return {
            "seeds": self.seeds, "test_images": int(len(self.test_images)), "val_images": int(len(self.val_images)),
            "judge_test_accuracy": round(self.judge_accuracy, 4), "prompt_following": round(self.prompt_accuracy, 4),
            "selected_on_validation": self.selected, "ridge_alpha": self.ridge_alpha,
            "summary": {r: {m: mean_std(r, m) for m in self.metric_names} for r in self.order},
            "chance": self.chance, "acceptance": self.verdict, "sampling_error": _rounded(self.sampling_error),
            "controlnet_follows_layouts": {"follows": self.controlnet_follows, **{
                r: {m: round(float(v), 4) for m, v in self.follow.loc[r].items() if not np.isnan(v)}
                for r in self.follow.index}},
            "dreamdiffusion_curve": {int(n): {k: round(float(v), 5) for k, v in r.items()}
                                     for n, r in self.curve.iterrows()},
            "linear_decoder": {"penalty": self.decoder_penalty, "test_accuracy": round(self.decoder_accuracy, 4)},
            "retrieval": {name: {f"{k}_{stat}": round(float(retrieval.loc[name, (k, stat)]), 4)
                                 for k in ("top-1", "top-5") for stat in ("mean", "std")
                                 if not np.isnan(retrieval.loc[name, (k, stat)])} for name in retrieval.index},
            "layout": {k: round(v, 4) for k, v in self.layout.items()},
            "zero_shot": {} if not self.unseen else {
                "classes": self.unseen, "test_images": int(self.held_out.sum()),
                "metrics": _rounded(self.zero_shot_table), "retrieval": _rounded(self.zero_shot_retrieval)},
            "ablations": _rounded(self.ablation_table),
            "per_seed": self.results.round(4).to_dict(orient="records"),
            "seconds": {k: round(v, 1) for k, v in self.timings.items()},
        }

    def conclusion(self) -> str:
        """What the run found, from its numbers (the notebook prefixes the seeds and the test-set size)."""
        sg, hard, bound = (self.summary.loc[r] for r in ("structure-guided", DECODER, BOUND))
        n, top5 = len(self.test_images), lambda name: self.retrieval.loc[name, ("top-5", "mean")]
        text = (f"10-way top-1 structure-guided "
                f"{sg['top1_10way_mean']:.3f}, linear decoder -> class prompt {hard['top1_10way_mean']:.3f}, "
                f"true-class prompt {bound['top1_10way_mean']:.3f} (chance 0.1); within-class 2-way identification "
                f"{sg.get('two_way_within_class_mean', np.nan):.3f} (chance 0.5, test sampling error "
                f"{self.sampling_error.loc['structure-guided'].get('two_way_within_class', np.nan):.3f}); EEG layout "
                f"R^2 against the mean {self.structure_kind} code {self.layout['r2_vs_mean_layout']:.3f}; retrieval "
                f"top-5 among {n} test images {top5('contrastive (InfoNCE) warm-up'):.3f} with the contrastive EEG "
                f"embedding, {top5('1 - cos warm-up (stage C)'):.3f} with stage C's (chance {5 / n:.3f}). ")
        if self.unseen:
            zs, k = self.zero_shot_retrieval, int(self.held_out.sum())
            text += (f"Zero-shot (classes {self.unseen} never in the EEG side's training, {k} test images): retrieval "
                     f"top-5 {zs.loc[f'{CONTRASTIVE}, {UNSEEN}', 'top-5']:.3f} (contrastive) and "
                     f"{zs.loc[f'{TWO_STAGE}, {UNSEEN}', 'top-5']:.3f} (ridge), chance {5 / k:.3f}; the linear "
                     f"decoder's class prompt 10-way top-1 "
                     f"{self.zero_shot_table.loc[f'{DECODER}, {UNSEEN}', 'top1_10way']:.3f}. ")
        return text + (f"Total measured time {sum(self.timings.values()):.0f} s: "
                       + ", ".join(f"{k} {v:.0f} s" for k, v in self.timings.items()))
