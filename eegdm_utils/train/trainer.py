"""Training plumbing shared by the Lightning modules: a resumable step-indexed batch
sampler, Trainer construction from a few scale-out parameters, and checkpoint helpers.

The sampler makes training reproducible across interruptions: the batch of step s is a
slice of the permutation of epoch ``s // steps_per_epoch``, seeded by (seed, epoch), so
a run resumed from a checkpoint at step s sees exactly the batches it would have seen.
Under DDP each rank takes every ``world_size``-th index of the batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Sampler

from ..core.runtime import keep_freed_memory, progress_enabled, text_progress


class StepBatchSampler(Sampler):
    """Infinite batches of indices; ``start_step`` (a callable) is read when iteration starts."""

    def __init__(self, n: int, batch_size: int, seed: int, start_step: Callable[[], int] = lambda: 0,
                 shuffle: bool = True):
        if n < 1:
            raise ValueError("cannot sample batches from an empty dataset")
        self.n, self.batch_size, self.seed, self.start_step, self.shuffle = n, batch_size, seed, start_step, shuffle
        self.steps_per_epoch = max(1, n // batch_size)

    def batch(self, step: int) -> np.ndarray:
        epoch, b = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n) if self.shuffle else np.arange(self.n)
        if self.n < self.batch_size:  # tiny data: repeat the permutation
            order = np.resize(order, self.batch_size)
        return order[b * self.batch_size:(b + 1) * self.batch_size]

    def __iter__(self):
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        step = int(self.start_step())
        while True:
            yield self.batch(step)[rank::world].tolist()
            step += 1


@dataclass
class ScaleConfig:
    """Where and how a Lightning run executes (the same code on CPU, one GPU or many)."""

    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"  # "ddp" for several GPUs
    precision: str = "32-true"  # "bf16-mixed" on GPUs
    num_nodes: int = 1


def make_trainer(scale: ScaleConfig, log_dir: str | os.PathLike, name: str, max_steps: int = -1,
                 max_epochs: int | None = None, callbacks=(), gradient_clip_val: float | None = None,
                 val_check_interval: int | float | None = None, log_every_n_steps: int = 10,
                 check_val_every_n_epoch: int | None = 1, progress: bool | None = None, **kwargs):
    """A Lightning Trainer for ``scale``. Also has glibc's malloc keep freed memory for the
    process (``core.runtime.keep_freed_memory``): the large activations of every step are reused
    instead of being unmapped and faulted in again."""
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger


    keep_freed_memory()
    if text_progress() and (progress is None or progress):
        callbacks = [*callbacks, text_progress_bar()]

    return L.Trainer(
        accelerator=scale.accelerator, devices=scale.devices, strategy=scale.strategy,
        precision=scale.precision, num_nodes=scale.num_nodes, max_steps=max_steps, max_epochs=max_epochs,
        callbacks=list(callbacks), gradient_clip_val=gradient_clip_val, val_check_interval=val_check_interval,
        check_val_every_n_epoch=check_val_every_n_epoch, log_every_n_steps=log_every_n_steps,
        logger=CSVLogger(str(log_dir), name=name),  # a resumed run logs to the next version
        enable_progress_bar=progress_enabled() if progress is None else progress,
        enable_model_summary=False, num_sanity_val_steps=0, use_distributed_sampler=False,
        deterministic=False, **kwargs,
    )


def text_progress_bar():
    """Lightning's progress bar as plain text on stderr, at most every 10 s, without the validation
    bars: what ``tools/run.py`` streams from a notebook that papermill runs (``EEGDM_PROGRESS=text``;
    Lightning's own bar is a widget inside a kernel, which papermill cannot show)."""
    import sys

    from lightning.pytorch.callbacks import TQDMProgressBar
    from tqdm import tqdm

    class TextProgressBar(TQDMProgressBar):
        def init_train_tqdm(self):
            return tqdm(desc=self.train_description, file=sys.stderr, mininterval=10.0, leave=False, smoothing=0)

        def init_validation_tqdm(self):
            return tqdm(disable=True)

    return TextProgressBar(refresh_rate=100)  # a line per 100 steps, or per epoch if shorter


def read_csv_log(log_dir: str | os.PathLike, name: str):
    """The metrics Lightning's CSVLogger wrote, all versions (a resumed run writes the
    next one) joined by step, later versions winning; empty if none."""
    import pandas as pd

    versions = sorted((Path(log_dir) / name).glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name[8:]))
    frames = [pd.read_csv(p).assign(_version=i) for i, p in enumerate(versions)]
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values(["step", "_version"]).drop(columns="_version").reset_index(drop=True)


def quiet_lightning() -> None:
    """Lightning's informational logging is noise in notebooks; warnings stay."""
    import logging
    import warnings

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
    warnings.filterwarnings("ignore", message=".*`isinstance\\(treespec, LeafSpec\\)`.*")
    warnings.filterwarnings("ignore", message=".*_pytree.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode at the start of training.*")  # frozen backbones
