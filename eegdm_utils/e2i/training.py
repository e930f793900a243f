"""The small training loop and the checkpoints shared by the EEG-to-image models.

The models of notebooks 80 and 85 are small and trained for a few hundred to a few
thousand steps on in-memory tensors, so one plain torch loop serves them all: AdamW,
linear warm-up then cosine decay, gradient clipping, an optional EMA copy, a progress bar.
It runs unchanged on CPU or GPU (the tensors' device decides). A checkpoint holds the
config dataclass, the step, the model, optimizer and EMA states and the loss history, and
is written atomically.
"""

from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch

from ..core.files import to_jsonable
from ..core.runtime import progress as progress_bar
from ..train.optim import OptimSettings, adamw, lr_schedule


@dataclass
class LoopConfig:
    """One training loop: its steps, items per batch, optimiser and schedule, and the EMA (0: no EMA copy)."""

    steps: int
    batch_size: int
    optim: OptimSettings
    ema_beta: float = 0.0


def loop(steps: int, batch_size: int, lr: float, warmup_steps: int, ema_beta: float = 0.0) -> LoopConfig:
    """The EEG-to-image loops' settings: AdamW (weight decay 0.01, gradient norm clipped at 1) at peak ``lr``,
    ``warmup_steps`` of linear warm-up (a longer warm-up than ``steps`` never reaches the peak), then a half
    cosine to 0 at ``steps``."""
    optim = OptimSettings.for_steps(lr, steps, warmup_steps, weight_decay=0.01, grad_clip=1.0, schedule="cosine")
    return LoopConfig(steps, batch_size, optim, ema_beta)


class BatchSampler:
    """Indices of shuffled epochs over ``n`` items, drawn from its own generator."""

    def __init__(self, n: int, batch_size: int, seed: int):
        if n <= 0:
            raise ValueError("cannot draw batches from an empty set")
        self.n, self.batch_size = n, min(batch_size, n)
        self.generator = torch.Generator().manual_seed(seed)
        self._order, self._at = torch.randperm(n, generator=self.generator), 0

    def __call__(self) -> torch.Tensor:
        if self._at + self.batch_size > self.n:
            self._order, self._at = torch.randperm(self.n, generator=self.generator), 0
        idx = self._order[self._at: self._at + self.batch_size]
        self._at += self.batch_size
        return idx


def index_batches(indices: torch.Tensor, batch_size: int, seed: int) -> Callable[[], torch.Tensor]:
    """Batches of ``indices`` (a 1-D tensor on any device: training images or trials), in shuffled
    epochs drawn by a :class:`BatchSampler` seeded with ``seed``."""
    sampler = BatchSampler(len(indices), batch_size, seed)
    return lambda: indices[sampler().to(indices.device)]


def train(parameters: Iterable[torch.nn.Parameter], loss_fn: Callable[[int], tuple[torch.Tensor, dict]],
          config: LoopConfig, ema_model: torch.nn.Module | None = None, desc: str = "train",
          log_every: int = 10, evaluate: Callable[[int], dict] | None = None, evaluate_at: Iterable[int] = ()) -> dict:
    """Run ``config.steps`` optimizer steps of ``loss_fn(step) -> (loss, parts)``.

    Only ``parameters`` are optimised (freezing is the caller's choice, made visible by
    what it passes). With ``config.ema_beta > 0`` an EMA copy of ``ema_model`` is kept
    and returned. ``evaluate(n)`` is called after ``n`` steps for each ``n`` in ``evaluate_at``
    (0: before the first), its dicts kept in order (a learning curve). Returns
    ``{"history": {name: [...]}, "optimizer": state, "ema": module, "evaluations": [{"step": n, ...}]}``.
    """
    parameters = [p for p in parameters if p.requires_grad]
    if not parameters:
        raise ValueError("no trainable parameters were given")
    optimizer = adamw(parameters, config.optim)
    scheduler = lr_schedule(optimizer, config.optim, config.steps)
    ema = None
    if config.ema_beta > 0:
        if ema_model is None:
            raise ValueError("ema_beta > 0 needs the model to copy (ema_model)")
        ema = copy.deepcopy(ema_model).eval().requires_grad_(False)
    history: dict[str, list[float]] = {"step": []}
    running: dict[str, float] = {}
    evaluate_at = sorted(set(int(n) for n in evaluate_at))
    if evaluate_at and (evaluate is None or evaluate_at[0] < 0 or evaluate_at[-1] > config.steps):
        raise ValueError(f"evaluate_at {evaluate_at} needs an evaluate function and steps within 0..{config.steps}")
    evaluations = [{"step": 0, **evaluate(0)}] if evaluate_at[:1] == [0] else []
    for step in progress_bar(range(config.steps), desc=desc, leave=False):
        loss, parts = loss_fn(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(parameters, config.optim.grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            _ema_update(ema, ema_model, config.ema_beta)
        for name, value in {"loss": float(loss.detach()), **{k: float(v) for k, v in parts.items()}}.items():
            running[name] = running.get(name, 0.0) + value
        if (step + 1) % log_every == 0 or step + 1 == config.steps:
            count = log_every if (step + 1) % log_every == 0 else (step + 1) % log_every
            history["step"].append(step + 1)
            for name, total in running.items():
                history.setdefault(name, []).append(total / count)
            running = {}
        if step + 1 in evaluate_at:
            evaluations.append({"step": step + 1, **evaluate(step + 1)})
    return {"history": history, "optimizer": optimizer.state_dict(), "ema": ema, "evaluations": evaluations}


@torch.no_grad()
def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1.0 - beta)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | os.PathLike, config, step: int, states: dict, history: dict | None = None,
                    extra: dict | None = None) -> Path:
    """``torch.save`` to a temporary name beside ``path``, then rename (nothing is written half)."""
    if not is_dataclass(config):
        raise TypeError("config must be a dataclass instance (it is saved so the checkpoint describes itself)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"config_class": type(config).__name__, "config": asdict(config), "step": step, "states": states,
               "history": history or {}, "extra": extra or {}}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, config_class, hint: str = "") -> tuple[object, dict]:
    """Read a checkpoint written by :func:`save_checkpoint`: (config instance, payload)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no checkpoint here{'; ' + hint if hint else ''}")
    try:
        # mapped, not read: a paper-size encoder's checkpoint (3.6 GB with its optimizer state) costs no memory
        # beyond the weights a caller copies out of it
        payload = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception as e:  # a truncated or foreign file
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(payload, dict) or "config" not in payload:
        raise ValueError(f"{path}: not a checkpoint of this package (no 'config' key)")
    if payload.get("config_class") != config_class.__name__:
        raise ValueError(f"{path}: holds a {payload.get('config_class')}, expected a {config_class.__name__}")
    known = {f.name for f in fields(config_class)}
    unknown = sorted(set(payload["config"]) - known)
    if unknown:
        raise ValueError(f"{path}: config keys {unknown} are unknown to {config_class.__name__}")
    return config_class(**payload["config"]), payload


@dataclass
class RunRecord:
    """What determines a trained model: its name and every setting (model config, steps,
    learning rate, seed, data fingerprint). Two runs with equal records give the same model."""

    name: str
    settings: dict


def train_or_load(path: str | os.PathLike, record: RunRecord, module: torch.nn.Module, fit: Callable[[], dict]) -> dict:
    """Load ``module`` from ``path`` when it was trained with the same record; otherwise call
    ``fit()`` (which trains ``module`` in place and returns :func:`train`'s result) and save.

    Returns the training result (``loaded`` True when nothing was trained)."""

    path = Path(path)
    if path.exists():
        saved, payload = load_checkpoint(path, RunRecord)
        if saved.name == record.name and to_jsonable(saved.settings) == to_jsonable(record.settings):
            module.load_state_dict(payload["states"]["model"])
            return {"history": payload["history"], "loaded": True}
    result = fit()
    save_checkpoint(path, record, int(result["history"]["step"][-1]) if result["history"].get("step") else 0,
                    {"model": module.state_dict(), "optimizer": result.get("optimizer")}, result["history"])
    return {**result, "loaded": False}
