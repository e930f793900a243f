"""SSMDP pretraining: a DDPM on single-channel EEG windows (EEGDM).

Each training step draws t uniformly from {0..T-1}, noises the (mu-law companded)
window, and regresses the v target with MSE. AdamW (lr 1e-4; S4D parameters in their own
group without weight decay), gradient clipping at 1.0, and an EMA of the weights (beta
0.999, updated every 10 steps after step 100) that later notebooks use. Noise and t of
step s come from a generator seeded by (seed, s), so a resumed run is identical to an
uninterrupted one.

Shape letters: B batch, L window length.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from ema_pytorch import EMA

from ..core.identity import differences
from ..data import dataprep
from ..data.datasets import PretrainDataset
from ..data.preprocess import PreprocessConfig
from ..data.simulate import SimulationConfig
from ..data.store import build_store
from ..models.diffusion import DiffusionConfig, add_noise, ddpm_scheduler, velocity
from ..models.ssmdp import SSMDP, SSMDPConfig, ssm_parameter_groups
from .optim import OptimSettings, adamw, fold_legacy_keys
from .trainer import ScaleConfig, StepBatchSampler, make_trainer, quiet_lightning


@dataclass
class PretrainConfig:
    model: SSMDPConfig = field(default_factory=SSMDPConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    optim: OptimSettings = field(default_factory=lambda: OptimSettings(lr=1.0e-4, grad_clip=1.0))  # the reference's
    ssm_lr: float | None = None  # the S4D parameters' lr; None: optim.lr
    ema_beta: float = 0.999
    ema_after: int = 100
    ema_every: int = 10
    batch_size: int = 32
    max_steps: int = 1000
    mu_law: bool = True
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> "PretrainConfig":
        d = fold_legacy_keys(dict(d), {"lr": "lr", "weight_decay": "weight_decay", "grad_clip": "grad_clip"},
                             cls().optim)  # a checkpoint written before OptimSettings
        parts = {"model": SSMDPConfig, "diffusion": DiffusionConfig, "optim": OptimSettings}
        nested = {k: kind(**d.pop(k)) for k, kind in parts.items() if k in d}  # the others: their defaults
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise KeyError(f"unknown pretraining settings: {sorted(unknown)}")
        return cls(**nested, **d)


def _step_generator(seed: int, step: int, device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + step) % (2**63))
    return g


class SSMDPModule(L.LightningModule):
    """Lightning wrapper: the denoiser, its EMA and the scheduler. The config travels in
    the checkpoint (``hparams``) with the step, optimizer and EMA state."""

    def __init__(self, config: dict):
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.config = PretrainConfig.from_dict(config)
        self.model = SSMDP(self.config.model)
        self.ema = EMA(self.model, beta=self.config.ema_beta, update_after_step=self.config.ema_after,
                       update_every=self.config.ema_every, include_online_model=False)
        self.scheduler = ddpm_scheduler(self.config.diffusion)

    def diffusion_loss(self, model, x0: torch.Tensor, channel: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        B = x0.shape[0]
        t = torch.randint(0, self.config.diffusion.num_train_timesteps, (B,), generator=g, device=x0.device)
        noise = torch.randn(x0.shape, generator=g, device=x0.device, dtype=x0.dtype)  # [B, 1, L]
        x_t = add_noise(self.scheduler, x0, noise, t)
        return F.mse_loss(model(x_t, t, channel), velocity(self.scheduler, x0, noise, t))

    def training_step(self, batch, batch_idx):
        x0, channel = batch  # [B, 1, L], [B]
        g = _step_generator(self.config.seed, self.global_step * self.trainer.world_size + self.global_rank,
                            x0.device)
        loss = self.diffusion_loss(self.model, x0, channel, g)
        self.log("train_loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def optimizer_step(self, *args, **kwargs):
        # here, not in on_train_batch_end: checkpoint callbacks run before that hook, and a
        # checkpoint must hold the EMA of the step it records
        super().optimizer_step(*args, **kwargs)
        self.ema.update()

    def validation_step(self, batch, batch_idx):
        x0, channel = batch
        g = _step_generator(self.config.seed + 1, batch_idx, x0.device)  # the same noise at every validation
        loss = self.diffusion_loss(self.ema.ema_model, x0, channel, g)
        self.log("val_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        groups = ssm_parameter_groups(self.model, self.config.optim.weight_decay, self.config.ssm_lr)
        return adamw(groups, self.config.optim)  # constant lr


def load_denoiser(path: str | Path, use_ema: bool = True, map_location="cpu") -> tuple[SSMDP, PretrainConfig]:
    """The (EMA) denoiser of a pretraining checkpoint, frozen, in eval mode."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no SSMDP checkpoint; run notebooks/20_pretrain_ssmdp with this run_dir first")
    module = SSMDPModule.load_from_checkpoint(path, map_location=map_location, weights_only=False)
    model = module.ema.ema_model if use_ema else module.model
    model.eval().requires_grad_(False)
    return model, module.config


def train_ssmdp(run_dir: str | Path, store, config: PretrainConfig, scale=None, val_every: int = 100,
                ckpt_every: int = 200, max_val_samples: int = 512, folder: str = "pretrain", extend: bool = False):
    """Train (or resume) SSMDP on the store's pretrain product; returns the module
    (``module.start_step``: the step this call resumed from).

    Checkpoints go to ``run_dir/<folder>/checkpoints`` (``last.ckpt`` every ``ckpt_every``
    steps, so an interrupted run resumes); the final one to ``run_dir/<folder>/ssmdp.ckpt``;
    the loss log to ``run_dir/<folder>/logs``. A checkpoint made with another config is
    an error naming the settings that differ; with ``extend``, one that differs only in having
    fewer ``max_steps`` is continued to ``config.max_steps`` (constant learning rate only: it then
    ends where a run of that many steps from the start ends).
    """
    import os

    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader


    quiet_lightning()
    scale = scale or ScaleConfig()
    out = Path(run_dir) / folder
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    wanted = asdict(config)
    start_step = 0
    if last.exists():
        ckpt = torch.load(last, map_location="cpu", weights_only=False)
        saved, start_step = ckpt["hyper_parameters"]["config"], int(ckpt["global_step"])
        if saved != wanted and not (extend and _extends(saved, wanted)):
            raise ValueError(f"{last}: was trained with other settings ({', '.join(differences(saved, wanted))} "
                             f"differ); use another run_dir or delete {ckpt_dir}")
    L.seed_everything(config.seed, verbose=False)
    module = SSMDPModule(wanted)
    module.start_step = start_step  # where this call picked up (0: a fresh run)
    train_set = PretrainDataset(store, "train", mu_law=config.mu_law)
    sampler = StepBatchSampler(len(train_set), config.batch_size, config.seed, start_step=lambda: module.global_step)
    train_loader = DataLoader(train_set, batch_sampler=sampler, num_workers=0)
    val_loader = None
    if store.meta["n_pretrain"].get("val"):
        val_set = PretrainDataset(store, "val", mu_law=config.mu_law, max_samples=max_val_samples, seed=config.seed)
        val_loader = DataLoader(val_set, batch_size=config.batch_size, shuffle=False, num_workers=0)
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, save_last=True, every_n_train_steps=ckpt_every, save_top_k=0)
    # a log row every 10 steps, and at least one in a run shorter than that
    trainer = make_trainer(scale, out / "logs", "ssmdp", max_steps=config.max_steps, callbacks=[checkpoint],
                           log_every_n_steps=max(1, min(10, config.max_steps)),
                           gradient_clip_val=config.optim.grad_clip or None, check_val_every_n_epoch=None,
                           val_check_interval=val_every if val_loader is not None else None,
                           limit_val_batches=None if val_loader is not None else 0)
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if last.exists() else None)
    final = out / "ssmdp.ckpt"
    tmp = out / ".ssmdp.ckpt.tmp"
    trainer.save_checkpoint(tmp)
    os.replace(tmp, final)
    return module, trainer


def _extends(saved: dict, wanted: dict) -> bool:
    """Whether ``wanted`` is ``saved`` with more steps at a constant learning rate."""
    def rest(c):
        return {k: v for k, v in c.items() if k != "max_steps"}
    return (rest(saved) == rest(wanted) and saved["max_steps"] <= wanted["max_steps"]
            and wanted["optim"]["schedule"] == "constant")


def untrained_denoiser(pretrain_config):
    """The SSMDP that pretraining with ``pretrain_config`` starts from (same seed, same
    initialisation, no step taken), frozen: the backbone of the untrained control."""

    # train_ssmdp seeds everything with this seed before building the module; only torch's RNG
    # draws the weights. Forked, so that the caller's random state (the next model's
    # initialisation, its seed) is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(pretrain_config.seed)
        module = SSMDPModule(asdict(pretrain_config))
    return module.ema.ema_model.eval().requires_grad_(False)


def planned_steps(epochs: int, steps: int, n_train: int, batch_size: int) -> int:
    """The optimisation steps of a pretraining run: ``epochs`` passes over ``n_train`` items (batches of
    ``batch_size``) when ``epochs`` > 0, else ``steps``. Exactly one of the two must be set (> 0): with
    both, one would silently win over the other."""
    if epochs > 0 and steps > 0:
        raise ValueError(f"pretrain_epochs {epochs} and pretrain_steps {steps} are both set: set the one you mean "
                         "and the other to 0")
    if epochs > 0:
        return epochs * math.ceil(n_train / batch_size)
    if steps > 0:
        return steps
    raise ValueError("pretrain_epochs and pretrain_steps are both 0: set one of them")


def pretrain_on_simulated_corpus(run_dir: str | Path, config: PretrainConfig, epochs: int, steps: int, scale=None,
                                 sim_dir: str | Path = "../data/sim_tuev", notch_freq: float = 60.0) -> Path:
    """Train a backbone with ``config`` on the simulated corpus at its default size (store and
    checkpoint in ``run_dir``), for ``epochs`` passes or ``steps`` steps (:func:`planned_steps`); the
    transfer backbone of the real-EEG notebook when notebook 20's is absent. Returns the checkpoint."""
    specs, classes, source = dataprep.recordings("", sim_dir=sim_dir, sim_config=SimulationConfig())
    store = build_store(Path(run_dir) / "store", specs, classes, PreprocessConfig(notch_freq=notch_freq), source)
    planned = planned_steps(epochs, steps, store.meta["n_pretrain"]["train"], config.batch_size)
    print(f"pretraining the SSMDP on the simulated corpus ({planned} steps)")
    train_ssmdp(run_dir, store, replace(config, max_steps=planned), scale)
    return Path(run_dir) / "pretrain" / "ssmdp.ckpt"
