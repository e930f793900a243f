"""EEGFoundation pretraining: masked-token prediction on single-channel token sequences.

The release's recipe: 15% of the amplitude tokens selected (80/10/10, ``collator``),
cross-entropy on them, on bare amplitude ids (no [CLS] or [SEP]); composer's DecoupledAdamW
(lr 5e-4, betas 0.9/0.98, eps 1e-6, weight decay 1e-5 on every parameter) as torch's AdamW
(``release_optim``), linear warm-up over the first 1% of the steps then linear decay to 2% of the
peak, gradient clipping at 2.0. Windows that reach 100 uV on any channel are left out
(``pretrain_sets`` counts the single-channel items they hold). Logged: loss and
masked-token accuracy, for training and validation; ``unigram_baseline`` is the accuracy
of always predicting the most frequent training token, the floor a model must beat.

The masking and the dropout of step s come from generators seeded by (seed, s), so a
resumed run ends with the same weights as an uninterrupted one; validation masks with a
fixed seed.

Shape letters: B batch, L samples, S sequence length, V vocabulary.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ..core.identity import differences
from ..data.datasets import PretrainDataset
from ..data.recordings import DataError
from ..train.optim import OptimSettings, adamw, fold_legacy_keys, lr_schedule
from ..train.trainer import ScaleConfig, StepBatchSampler, make_trainer, quiet_lightning
from .collator import IGNORE, MaskingCollator, MaskingConfig
from .model import EncoderConfig, build_encoder, centre_crop
from .tokenizer import N_LEVELS, TokenizerConfig, make_tokenizer, reject_out_of_range


def release_optim(lr: float = 5.0e-4) -> OptimSettings:
    """The release's pretraining optimiser (``Pretrain/pretrain.py``): composer's DecoupledAdamW (lr 5e-4, betas
    0.9/0.98, eps 1e-6, weight decay 1e-5 on every parameter) and LinearWithWarmupScheduler (1% warm-up from 0,
    then linear to 2% of the peak), gradient norm clipped at 2. Composer shrinks the weights by
    ``(lr / peak) * 1e-5`` a step; torch's AdamW by ``lr * weight_decay``: the same with weight decay 1e-5 / 5e-4."""
    return OptimSettings(lr=lr, betas=(0.9, 0.98), eps=1.0e-6, weight_decay=1.0e-5 / 5.0e-4, grad_clip=2.0,
                         schedule="linear", warmup=0.01, final_lr=0.02)


@dataclass
class FoundationPretrainConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    optim: OptimSettings = field(default_factory=release_optim)
    batch_size: int = 32
    max_steps: int = 1000
    reject_uv: float = 100.0  # windows reaching this are left out of pretraining
    sequence_samples: int | None = None  # tokenize the middle this many samples of a window (None: all of it)
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> "FoundationPretrainConfig":
        legacy = {k: k for k in ("lr", "betas", "eps", "weight_decay", "grad_clip")} | {"warmup_fraction": "warmup"}
        # a checkpoint written before OptimSettings (its schedule decayed to 0)
        d = fold_legacy_keys(dict(d), legacy, replace(cls().optim, final_lr=0.0))
        parts = {"encoder": EncoderConfig, "tokenizer": TokenizerConfig, "masking": MaskingConfig, "optim": OptimSettings}
        nested = {k: kind(**d.pop(k)) for k, kind in parts.items() if k in d}  # the others: their defaults
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise KeyError(f"unknown foundation pretraining settings: {sorted(unknown)}")
        return cls(**nested, **d)


def masked_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Share of selected tokens predicted exactly: logits [B, S, V], labels [B, S]."""
    selected = labels != IGNORE
    hits = (logits.argmax(-1) == labels) & selected
    return hits.sum() / selected.sum().clamp_min(1)


def unigram_baseline(train_ids: torch.Tensor, eval_ids: torch.Tensor) -> tuple[int, float]:
    """(the most frequent amplitude id of ``train_ids``, its share of ``eval_ids``' amplitude ids).

    Masked positions are drawn uniformly among amplitude tokens, so this share is the
    masked-token accuracy of always predicting that id."""
    train_ids, eval_ids = torch.as_tensor(train_ids).flatten(), torch.as_tensor(eval_ids).flatten()
    counts = torch.bincount(train_ids[train_ids < N_LEVELS], minlength=N_LEVELS)  # [N_LEVELS]
    token = int(counts.argmax())
    eval_amplitude = eval_ids[eval_ids < N_LEVELS]
    return token, float((eval_amplitude == token).float().mean()) if len(eval_amplitude) else float("nan")


def _step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step) % 2**63


def _generator(seed: int, step: int, device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(_step_seed(seed, step))


class MaskedTokenModule(L.LightningModule):
    """RoFormer masked-LM pretraining; the config travels in the checkpoint (``hparams``)."""

    def __init__(self, config: dict):
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.config = c = FoundationPretrainConfig.from_dict(config)
        self.model = build_encoder(c.encoder)
        self.collator = MaskingCollator(make_tokenizer(c.tokenizer), c.masking)

    def masked_step(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, 1, L] -> (loss, masked-token accuracy).

        The same loss as ``RoFormerForMaskedLM(..., labels=...)`` (mean cross-entropy over the
        selected tokens), with the vocabulary head applied to the selected positions only: the
        other 85% of the [B, S, V] logits are never needed (a third of the step on a CPU)."""
        batch = self.collator.mask_batch(centre_crop(x[:, 0], self.config.sequence_samples), generator)  # [B, S] each
        hidden = self.model.roformer(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        selected = batch["labels"] != IGNORE  # [B, S]
        logits = self.model.cls(hidden[selected])  # [M, V]
        targets = batch["labels"][selected]  # [M]
        if not len(targets):  # nothing selected (a batch of tiny windows): no signal, but a graph
            return hidden.sum() * 0.0, hidden.new_tensor(float("nan"))
        return torch.nn.functional.cross_entropy(logits, targets), masked_accuracy(logits, targets)

    def training_step(self, batch, batch_idx):
        x, _ = batch  # [B, 1, L], channel index (unused: the encoder sees one channel at a time)
        step = self.global_step * self.trainer.world_size + self.global_rank
        torch.manual_seed(_step_seed(self.config.seed + 2, step))  # dropout: a resumed step draws the same
        loss, accuracy = self.masked_step(x, _generator(self.config.seed, step, x.device))
        self.log_dict({"train_loss": loss, "train_acc": accuracy}, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, _ = batch
        loss, accuracy = self.masked_step(x, _generator(self.config.seed + 1, batch_idx, x.device))
        self.log_dict({"val_loss": loss, "val_acc": accuracy}, on_epoch=True, sync_dist=True, prog_bar=True)

    def configure_optimizers(self):
        c = self.config
        optimizer = adamw(self.model.parameters(), c.optim)  # one group: the release decays every parameter
        schedule = lr_schedule(optimizer, c.optim, c.max_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def in_range_subset(dataset, threshold_uv: float, chunk: int = 256) -> tuple[Subset, int]:
    """The items (single-channel windows) of a ``PretrainDataset`` whose multi-channel window stays under
    ``threshold_uv`` on every channel, as the release drops a whole multi-channel segment when any of its
    channels reaches 100 uV (``preprocess_TUEG_for_pretrain.py``; its segments are 30 s, ours the store's
    windows); and how many items were left out (read ``chunk`` windows at a time)."""
    windows, pairs = dataset.windows, dataset.pairs  # [U, K, L], [M, 2] (window, channel)
    if not len(pairs):
        return Subset(dataset, []), 0
    keep_windows = torch.cat([reject_out_of_range(np.array(windows[i:i + chunk]), threshold_uv, dims=2)[0]
                              for i in range(0, len(windows), chunk)])  # [U]
    keep = keep_windows[pairs[:, 0]].numpy()  # [M]
    return Subset(dataset, np.flatnonzero(keep).tolist()), int((~keep).sum())


def pretrain_sets(store, config: FoundationPretrainConfig, max_val_samples: int = 512):
    """(train set, val set or None, {"rejected": {split: count}, "kept": {split: count}}) of
    single-channel windows [1, L] from the store, out-of-range windows left out."""

    train, n_train = in_range_subset(PretrainDataset(store, "train", mu_law=False), config.reject_uv)
    val, n_val = None, 0
    if store.meta["n_pretrain"].get("val"):
        full = PretrainDataset(store, "val", mu_law=False, max_samples=max_val_samples, seed=config.seed)
        val, n_val = in_range_subset(full, config.reject_uv)
    info = {"rejected": {"train": n_train, "val": n_val},
            "kept": {"train": len(train), "val": len(val) if val is not None else 0}}
    for split, kept, rejected in (("train", len(train), n_train), ("val", None if val is None else len(val), n_val)):
        if kept == 0:
            raise DataError(f"{store.path}: every {split} window reaches {config.reject_uv:g} uV ({rejected} rejected); "
                            "nothing is left to pretrain or validate on: raise reject_uv or give more data")
    return train, val, info


def _check_resumable(last: Path, wanted: dict) -> int:
    """The step ``last`` reached, or an error naming the settings it was trained with that differ."""
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    saved = ckpt["hyper_parameters"]["config"]
    differ = differences(saved, wanted)  # dotted names: "optim.lr"
    if differ:
        raise ValueError(f"{last}: was trained with other settings ({', '.join(differ)} differ); "
                         f"use another folder or delete {last.parent}")
    return int(ckpt["global_step"])


def train_foundation(out_dir: str | Path, train_set: Dataset, val_set: Dataset | None,
                     config: FoundationPretrainConfig, scale=None, val_every: int = 100, ckpt_every: int = 200,
                     log_every: int = 10, callbacks=()):
    """Pretrain (or resume) the encoder on items (x [1, L], channel); returns (module, trainer).

    ``out_dir/checkpoints/last.ckpt`` every ``ckpt_every`` steps (a run resumes from it), the
    final checkpoint ``out_dir/foundation.ckpt``, the CSV log in ``out_dir/logs/foundation``."""
    from lightning.pytorch.callbacks import ModelCheckpoint


    quiet_lightning()
    out = Path(out_dir)
    last = out / "checkpoints" / "last.ckpt"
    wanted = asdict(config)
    start_step = _check_resumable(last, wanted) if last.exists() else 0
    L.seed_everything(config.seed, verbose=False)
    module = MaskedTokenModule(wanted)
    module.start_step = start_step
    sampler = StepBatchSampler(len(train_set), config.batch_size, config.seed, start_step=lambda: module.global_step)
    train_loader = DataLoader(train_set, batch_sampler=sampler, num_workers=0)
    has_val = val_set is not None and len(val_set) > 0
    val_loader = DataLoader(val_set, batch_size=config.batch_size, shuffle=False) if has_val else None
    checkpoint = ModelCheckpoint(dirpath=out / "checkpoints", save_last=True, every_n_train_steps=ckpt_every,
                                 save_top_k=0)
    trainer = make_trainer(scale or ScaleConfig(), out / "logs", "foundation", max_steps=config.max_steps,
                           callbacks=[checkpoint, *callbacks], gradient_clip_val=config.optim.grad_clip or None, check_val_every_n_epoch=None,
                           val_check_interval=val_every if has_val else None,
                           log_every_n_steps=max(1, min(log_every, config.max_steps)),  # a row even in a short run
                           limit_val_batches=None if has_val else 0)
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if last.exists() else None)
    tmp = out / ".foundation.ckpt.tmp"
    trainer.save_checkpoint(tmp)
    os.replace(tmp, out / "foundation.ckpt")  # never half a checkpoint under the final name
    return module, trainer


def load_encoder(path: str | Path, map_location="cpu"):
    """(frozen encoder in eval mode, its tokenizer, the config) of a pretraining checkpoint."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no foundation checkpoint; run the foundation pretraining first")
    module = MaskedTokenModule.load_from_checkpoint(path, map_location=map_location, weights_only=False)
    encoder = module.model.eval().requires_grad_(False)
    return encoder, module.collator.tokenizer, module.config
