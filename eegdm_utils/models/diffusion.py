"""The diffusion process of SSMDP: diffusers' DDPMScheduler with T = 50 steps, the
``squaredcos_cap_v2`` schedule (``linear`` 1e-4..0.05 for the ablation), v-prediction.

Forward process:  x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps
Training target:  v   = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0
Back to x_0:      x_0 = sqrt(abar_t) x_t - sqrt(1 - abar_t) v

These work for tensors of any rank ([B, 1, L] here). The scheduler is kept apart from the
model; sampling loops are written out in the notebooks that use them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler, DDPMScheduler


@dataclass
class DiffusionConfig:
    num_train_timesteps: int = 50
    beta_schedule: str = "squaredcos_cap_v2"  # "linear" for the ablation
    beta_start: float = 1.0e-4  # linear schedule only
    beta_end: float = 5.0e-2  # linear schedule only
    prediction_type: str = "v_prediction"


def _kwargs(config: DiffusionConfig) -> dict:
    if config.beta_schedule not in ("squaredcos_cap_v2", "linear"):
        raise ValueError(f"beta_schedule must be 'squaredcos_cap_v2' or 'linear', not {config.beta_schedule!r}")
    return dict(num_train_timesteps=config.num_train_timesteps, beta_schedule=config.beta_schedule,
                beta_start=config.beta_start, beta_end=config.beta_end,
                prediction_type=config.prediction_type, clip_sample=False)


def ddpm_scheduler(config: DiffusionConfig) -> DDPMScheduler:
    return DDPMScheduler(**_kwargs(config))


def ddim_scheduler(config: DiffusionConfig) -> DDIMScheduler:
    return DDIMScheduler(**_kwargs(config), set_alpha_to_one=True)


def _coefficients(scheduler, t: torch.Tensor, like: torch.Tensor):
    abar = scheduler.alphas_cumprod.to(like.device, torch.float64)[t.long().to(like.device)]  # [B]
    shape = (-1,) + (1,) * (like.dim() - 1)
    return abar.sqrt().to(like.dtype).reshape(shape), (1 - abar).sqrt().to(like.dtype).reshape(shape)


def add_noise(scheduler, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    a, s = _coefficients(scheduler, t, x0)
    return a * x0 + s * noise


def velocity(scheduler, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    a, s = _coefficients(scheduler, t, x0)
    return a * noise - s * x0


def x0_from_v(scheduler, x_t: torch.Tensor, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    a, s = _coefficients(scheduler, t, x_t)
    return a * x_t - s * v


@torch.no_grad()
def x0_error_by_step(model, scheduler, dataset, steps, n: int = 48, seed: int = 1) -> list[float]:
    """Mean squared error of a v-prediction model's x_0 estimate at each diffusion step of ``steps``,
    over ``n`` samples of ``dataset`` (items: x [1, L], channel index) with the same noise at every
    step (drawn from ``seed``): how well the denoiser recovers the signal at each noise level."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(dataset), generator=gen)[:n]
    xs = torch.stack([dataset[int(i)][0] for i in idx])  # [n, 1, L]
    channels = torch.tensor([dataset[int(i)][1] for i in idx])
    eps = torch.randn(xs.shape, generator=gen)
    errors = []
    for step in steps:
        t = torch.full((len(xs),), int(step))
        x_t = add_noise(scheduler, xs, eps, t)
        errors.append(float(((x0_from_v(scheduler, x_t, model(x_t, t, channels), t) - xs) ** 2).mean()))
    return errors
