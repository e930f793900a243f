"""One settings type for the optimiser and learning-rate schedule of every fit in the package: SSMDP
pretraining, the LFT and EEGNet (fine-tuning), the EEGFoundation pretraining and head, and the
EEG-to-image loops. Each is AdamW; they differ in their numbers and in the shape of the schedule:

- ``constant``: the peak ``lr`` throughout (EEGDM's pretraining);
- ``one_cycle``: torch's OneCycleLR with ``warmup`` as its ``pct_start`` (EEGDM's fine-tuning; its
  defaults: a cosine warm-up from lr/25 and a cosine decay to lr/25e4, beta1 cycled between 0.85 and 0.95);
- ``linear``: ``ceil(warmup * steps)`` steps of linear warm-up from 0, then a linear decay to ``final_lr``
  times the peak (with 0: transformers' ``get_linear_schedule_with_warmup``; with 0.02: composer's
  ``LinearWithWarmupScheduler(alpha_f=0.02)``, EEGFoundation's pretraining);
- ``cosine``: the same warm-up counted from the first step (1/w, 2/w, ... 1), then a half cosine to 0
  (the EEG-to-image loops).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

SCHEDULES = ("constant", "one_cycle", "linear", "cosine")


@dataclass
class OptimSettings:
    lr: float = 1.0e-3  # the peak learning rate
    weight_decay: float = 0.0  # AdamW's decoupled decay (a fit's parameter groups may spare some parameters)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1.0e-8
    grad_clip: float = 0.0  # the largest gradient norm; 0: not clipped
    schedule: str = "constant"  # one of SCHEDULES
    warmup: float = 0.0  # the share of the steps spent warming up (one_cycle: its pct_start, below 1)
    final_lr: float = 0.0  # linear: the lr reached at the last step, as a share of the peak

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, not {self.schedule!r}")
        if self.warmup < 0:
            raise ValueError(f"warmup is a share of the steps (>= 0), not {self.warmup}")
        if not 0 <= self.final_lr <= 1:
            raise ValueError(f"final_lr is a share of the peak lr in [0, 1], not {self.final_lr}")
        self.betas = tuple(self.betas)  # a list from a checkpoint's hparams compares equal to the tuple

    def warmup_steps(self, total_steps: int) -> int:
        """The warm-up of the ``linear`` and ``cosine`` schedules in steps: ``ceil(warmup * total_steps)``
        (at least 1; a share given as k / total_steps gives k back despite rounding)."""
        return max(1, math.ceil(self.warmup * total_steps - 1e-9))

    @classmethod
    def for_steps(cls, lr: float, steps: int, warmup_steps: int, **settings) -> "OptimSettings":
        """Settings whose warm-up is ``warmup_steps`` of ``steps`` (the loops that count warm-up in steps)."""
        return cls(lr=lr, warmup=warmup_steps / steps, **settings)


def fold_legacy_keys(d: dict, renames: dict[str, str], defaults: "OptimSettings") -> dict:
    """``d`` (a config dict from a checkpoint) with the optimiser keys that configs held flat before this
    type existed (``renames``: old key -> OptimSettings field) moved into ``d["optim"]``, over ``defaults``."""
    old = {new: d.pop(key) for key, new in renames.items() if key in d}
    if old:
        d["optim"] = {**asdict(defaults), **d.get("optim", {}), **old}
    return d


def adamw(parameters, settings: OptimSettings) -> torch.optim.AdamW:
    """AdamW over ``parameters`` (tensors, or groups that may set their own ``weight_decay`` and ``lr``)."""
    return torch.optim.AdamW(parameters, lr=settings.lr, betas=settings.betas, eps=settings.eps,
                             weight_decay=settings.weight_decay)


def lr_schedule(optimizer: torch.optim.Optimizer, settings: OptimSettings,
                total_steps: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The schedule of ``settings`` over ``total_steps`` optimiser steps, stepped once per step
    (None for ``constant``)."""
    if settings.schedule == "constant":
        return None
    if settings.schedule == "one_cycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.lr, pct_start=settings.warmup,
                                                   total_steps=total_steps)
    warmup = settings.warmup_steps(total_steps)
    if settings.schedule == "linear":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: linear_factor(step, total_steps, warmup, settings.final_lr))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cosine_factor(step, total_steps, warmup))


def linear_factor(step: int, steps: int, warmup: int, final: float = 0.0) -> float:
    """The share of the peak lr at ``step`` of the ``linear`` schedule (``final`` at ``steps``)."""
    if step < warmup:
        return step / max(1, warmup)
    return 1.0 - (1.0 - final) * min(1.0, (step - warmup) / max(1, steps - warmup))


def cosine_factor(step: int, steps: int, warmup: int) -> float:
    """The share of the peak lr at ``step`` of the ``cosine`` schedule."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
