"""Training and evaluating event classifiers (the LFT on cached latents, and the supervised
baseline on raw windows) with one Lightning module.

As in EEGDM's fine-tuning (:func:`finetune_optim`): cross-entropy with label smoothing 0.1; AdamW
(weight decay 0.05, betas 0.9/0.98, no decay on the fusion tokens, biases and 1-D weights); OneCycle (peak lr
5e-4, 10% warm-up) stepped per batch; gradient clipping at 3; an EMA of the weights that is
validated and tested; early stopping on validation kappa (patience 3, only after a
warm-up of 20 epochs); the best-kappa checkpoint is the result.

Test metrics are computed outside Lightning in one process, so every test sample counts
exactly once whatever the number of devices.

Shape letters: B batch, K channels, L samples, C classes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from ema_pytorch import EMA
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from torch.utils.data import DataLoader, Dataset

from ..core.scoring import classification_metrics
from .optim import OptimSettings, adamw, lr_schedule
from .trainer import ScaleConfig, make_trainer, quiet_lightning


def finetune_optim(lr: float = 5.0e-4, weight_decay: float = 0.05) -> OptimSettings:
    """EEGDM's fine-tuning optimiser: AdamW (betas 0.9/0.98) at peak ``lr`` with ``weight_decay``, OneCycle
    with a 10% warm-up, gradient norm clipped at 3."""
    return OptimSettings(lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98), grad_clip=3.0, schedule="one_cycle",
                         warmup=0.1)


@dataclass
class FinetuneConfig:
    max_epochs: int = 50
    batch_size: int = 64
    optim: OptimSettings = field(default_factory=finetune_optim)
    label_smoothing: float = 0.1
    ema_beta: float = 0.999
    patience: int = 3
    warmup_epochs: int = 20  # early stopping looks from this epoch index on (the reference's warm-up)
    class_weight: str = "none"  # "none" (reference) | "balanced": cross-entropy weights n / (C * n_c)
    seed: int = 0
    label_fraction: float = 1.0
    label_seed: int = 4523  # the labelled subset does not move with the model seed

    def __post_init__(self):
        if self.class_weight not in ("none", "balanced"):
            raise ValueError(f"class_weight must be none or balanced, not {self.class_weight!r}")


def label_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of a stratified ``fraction`` of the samples (at least one per present class)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.append(rng.choice(idx, size=max(1, int(round(fraction * len(idx)))), replace=False))
    return np.sort(np.concatenate(keep))


class WarmupEarlyStopping(EarlyStopping):
    """Early stopping that ignores epoch indices below ``warmup_epochs`` (as the reference's
    EarlyStoppingWithWarmup: with 20, the first check is at epoch index 20)."""

    def __init__(self, warmup_epochs: int, **kwargs):
        super().__init__(**kwargs)
        self.warmup_epochs = warmup_epochs

    def _run_early_stopping_check(self, trainer) -> None:
        # the one place both of Lightning's check points (train or validation epoch end) go through
        if trainer.current_epoch >= self.warmup_epochs:
            super()._run_early_stopping_check(trainer)


class ClassifierModule(L.LightningModule):
    """Any network ``net(x, present) -> logits`` with the EEGDM fine-tuning recipe."""

    def __init__(self, net: torch.nn.Module, config: FinetuneConfig, param_groups, n_classes: int,
                 describe: dict | None = None, class_weights: torch.Tensor | None = None):
        super().__init__()
        self.save_hyperparameters({"finetune": asdict(config), "describe": describe or {}})
        self.net, self.config, self.n_classes = net, config, n_classes
        self.register_buffer("class_weights", class_weights, persistent=False)
        self._groups = param_groups
        self.ema = EMA(net, beta=config.ema_beta, include_online_model=False)
        self._val = []

    def forward(self, x, present):
        return self.ema.ema_model(x, present)

    def training_step(self, batch, batch_idx):
        x, present, y, weight = batch  # weight: annotation lines this example stands for
        losses = F.cross_entropy(self.net(x, present), y, label_smoothing=self.config.label_smoothing, reduction="none")
        if self.class_weights is not None:
            weight = weight * self.class_weights[y]  # a class-weighted mean over the examples' losses
        loss = (losses * weight).sum() / weight.sum()
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def optimizer_step(self, *args, **kwargs):
        super().optimizer_step(*args, **kwargs)
        self.ema.update()

    def validation_step(self, batch, batch_idx):
        x, present, y, weight = batch
        logits = self.ema.ema_model(x, present)
        loss = (F.cross_entropy(logits, y, reduction="none") * weight).sum() / weight.sum()
        self.log("val_loss", loss, on_epoch=True, prog_bar=False, sync_dist=True)
        self._val.append((y.cpu(), logits.argmax(-1).cpu(), weight.cpu()))

    def on_validation_epoch_end(self):
        if not self._val:
            return
        y, p, w = (torch.cat([item[i] for item in self._val]).numpy() for i in range(3))
        self._val.clear()
        m = classification_metrics(y, p, self.n_classes, weights=w)  # per annotation line
        self.log("val_kappa", m["kappa"], prog_bar=True)
        self.log("val_bacc", m["balanced_accuracy"])
        self.log("val_f1", m["weighted_f1"])

    def configure_optimizers(self):
        optimizer = adamw(self._groups, self.config.optim)
        # the full schedule (max_epochs), whatever the number of devices; early stopping may cut it short
        schedule = lr_schedule(optimizer, self.config.optim, self.trainer.estimated_stepping_batches)
        if schedule is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class _Loaders(L.LightningDataModule):
    """Training batches shuffled by the seed (sharded across devices under DDP); every device
    validates on the whole validation set, so the kappa that selects the model is the same
    on all of them."""

    def __init__(self, train_set: Dataset, val_set: Dataset, config: FinetuneConfig):
        super().__init__()
        self.train_set, self.val_set, self.config = train_set, val_set, config

    def train_dataloader(self):
        c = self.config
        drop_last = len(self.train_set) > c.batch_size
        if self.trainer.world_size > 1:
            from torch.utils.data import DistributedSampler

            sampler = DistributedSampler(self.train_set, shuffle=True, seed=c.seed, drop_last=drop_last)
            return DataLoader(self.train_set, batch_size=c.batch_size, sampler=sampler, drop_last=drop_last)
        generator = torch.Generator().manual_seed(c.seed)
        return DataLoader(self.train_set, batch_size=c.batch_size, shuffle=True, generator=generator,
                          drop_last=drop_last)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=256, shuffle=False)


def class_weights(train_set, n_classes: int) -> torch.Tensor:
    """Balanced class weights n / (C * n_c) over the annotation lines of ``train_set`` (0 for absent classes)."""
    counts = np.bincount(train_set.labels, weights=train_set.weights, minlength=n_classes)  # lines per class
    present = counts > 0
    w = np.zeros(n_classes)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return torch.tensor(w, dtype=torch.float32)


def fit_classifier(net, train_set: Dataset, val_set: Dataset, config: FinetuneConfig, param_groups, out_dir,
                   n_classes: int, scale=None, describe: dict | None = None):
    """Train with early stopping; returns (module with the best-kappa EMA weights, epochs run, log dir)."""

    quiet_lightning()
    out_dir = Path(out_dir)
    L.seed_everything(config.seed, verbose=False)
    module = ClassifierModule(net, config, param_groups, n_classes, describe,
                              class_weights(train_set, n_classes) if config.class_weight == "balanced" else None)
    best = ModelCheckpoint(dirpath=out_dir / "checkpoints", filename="best", monitor="val_kappa", mode="max",
                           save_top_k=1, save_last=False)
    stop = WarmupEarlyStopping(config.warmup_epochs, monitor="val_kappa", mode="max", patience=config.patience)
    trainer = make_trainer(scale or ScaleConfig(), out_dir / "logs", "classifier", max_epochs=config.max_epochs,
                           callbacks=[best, stop], gradient_clip_val=config.optim.grad_clip or None, log_every_n_steps=5)
    trainer.fit(module, datamodule=_Loaders(train_set, val_set, config))
    state = torch.load(best.best_model_path, map_location="cpu", weights_only=False)["state_dict"]
    module.load_state_dict(state)
    return module, trainer.current_epoch, best  # epochs completed


def evaluate_lines(window_predictions: np.ndarray, lines: dict, n_classes: int) -> dict:
    """Metrics over every annotation line (each line once), from per-window predictions."""
    return classification_metrics(lines["label"], window_predictions[lines["window"]], n_classes)


@torch.no_grad()
def network_scores(model, inputs: np.ndarray, present: np.ndarray, batch: int = 64, transform=None) -> np.ndarray:
    """[N, C] logits of ``model(x, present)`` over inputs [N, ...] (NaN -> 0; ``transform`` applied
    to each batch, e.g. mu-law for EEGNet)."""
    out = []
    for start in range(0, len(inputs), batch):
        x = torch.from_numpy(np.nan_to_num(np.asarray(inputs[start:start + batch], dtype=np.float32)))
        if transform is not None:
            x = transform(x)
        out.append(model(x, torch.from_numpy(np.asarray(present[start:start + batch], dtype=bool))).float().numpy())
    return np.concatenate(out)
