"""SSMDP: the structured-state-space diffusion denoiser of EEGDM (Puah et al. 2025).

A WaveNet-style stack of gated blocks around a bidirectional S4D layer. The input is one
EEG channel; the diffusion step and the channel index are embedded, passed through MLPs
and added to every block as a global bias. Each block:

    h = LayerNorm(x) + Linear_cond(cond)          (zero-initialised, so training starts
    h = S4D(Linear(h))           [2H channels]     from the unconditioned network)
    gate, filter = split(h);  z = sigmoid(gate) * tanh(filter)
    skip = Linear(z);  x = Linear(z) + x          (no residual branch in the last block;
                                                   both as one matrix product)

The sum of the skips goes through Linear -> ReLU -> zero-initialised Linear to the output.
With d_model 128, d_state 128, 20 layers and d_cond 512 this is the paper configuration:
5,931,649 parameters. Every block hands back its ``gate`` (after the sigmoid) and
``filter`` (after the tanh) activations: the latent activity that the LFT reads
(:func:`eegdm_utils.train.latent_cache.block_activity`).

Shape letters: B batch, L length, H d_model, D d_cond, E d_cond_embed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .s4d import S4D


@dataclass
class SSMDPConfig:
    d_model: int = 128
    d_state: int = 128
    n_layer: int = 20
    d_cond: int = 512
    d_cond_embed: int = 128
    n_channels: int = 22  # conditioning classes: the TCP channel index
    bidirectional: bool = True
    dt_min: float = 1.0e-3
    dt_max: float = 1.0e-1


def step_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal diffusion-step embedding (DiffWave): [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / (half - 1))
    angles = t.float()[:, None] * freqs[None]  # [B, half]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # [B, dim]


def _mlp(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out), nn.SiLU(), nn.Linear(d_out, d_out), nn.SiLU())


class GatedS4DBlock(nn.Module):
    def __init__(self, config: SSMDPConfig, is_last: bool = False):
        super().__init__()
        H = config.d_model
        self.norm = nn.LayerNorm(H)
        self.cond_linear = nn.Linear(config.d_cond, H)
        nn.init.zeros_(self.cond_linear.weight)
        nn.init.zeros_(self.cond_linear.bias)
        self.in_linear = nn.Linear(H, 2 * H)
        self.s4d = S4D(2 * H, config.d_state, config.bidirectional, config.dt_min, config.dt_max)
        # the skip and residual projections as one matrix product (the last block has no residual)
        self.out_linear = nn.Linear(H, H if is_last else 2 * H)
        self.is_last = is_last

    def forward(self, x: torch.Tensor, cond: torch.Tensor, rate: float = 1.0, skip: bool = True):
        """x [B, L, H], cond [B, 1, D] -> (next x [B, L, H] or None, skip [B, L, H], gate, filter).
        With ``skip=False`` the skip output is None and not computed (the latent cache's pass)."""
        h = self.norm(x) + self.cond_linear(cond)  # [B, L, H]
        z, gate, filt = self.s4d.gated(self.in_linear(h), rate)  # [B, L, H] each: S4D output split, gated
        if not skip:
            if self.is_last:
                return None, None, gate, filt
            H = x.shape[-1]  # the residual half of out_linear only
            return nn.functional.linear(z, self.out_linear.weight[H:], self.out_linear.bias[H:]) + x, None, gate, filt
        if self.is_last:
            return None, self.out_linear(z), gate, filt
        skip, res = self.out_linear(z).chunk(2, dim=-1)  # [B, L, H] each
        return res + x, skip, gate, filt


class SSMDP(nn.Module):
    """The denoiser: (x_t [B, 1, L], t [B], channel [B]) -> prediction [B, 1, L]."""

    def __init__(self, config: SSMDPConfig | None = None):
        super().__init__()
        self.config = config = config if config is not None else SSMDPConfig()
        H, D, E = config.d_model, config.d_cond, config.d_cond_embed
        self.in_layer = nn.Sequential(nn.Linear(1, H), nn.ReLU())
        self.step_mlp = _mlp(E, D)
        self.channel_embed = nn.Embedding(config.n_channels, E)
        self.channel_mlp = _mlp(E, D)
        self.blocks = nn.ModuleList(GatedS4DBlock(config, is_last=i == config.n_layer - 1)
                                    for i in range(config.n_layer))
        self.out_hidden = nn.Linear(H, H)
        nn.init.kaiming_normal_(self.out_hidden.weight)
        self.out_final = nn.Linear(H, 1)
        nn.init.zeros_(self.out_final.weight)
        nn.init.zeros_(self.out_final.bias)

    def condition(self, t: torch.Tensor, channel: torch.Tensor) -> torch.Tensor:
        """[B], [B] -> global bias [B, 1, D]."""
        t_embed = self.step_mlp(step_embedding(t.reshape(-1), self.config.d_cond_embed))  # [B, D]
        c_embed = self.channel_mlp(self.channel_embed(channel.reshape(-1)))  # [B, D]
        return (t_embed + c_embed)[:, None]  # [B, 1, D]

    def forward(self, x: torch.Tensor, t: torch.Tensor, channel: torch.Tensor, rate: float = 1.0) -> torch.Tensor:
        cond = self.condition(t, channel)  # [B, 1, D]
        h = self.in_layer(x.transpose(1, 2))  # [B, L, H]
        skips = 0
        for block in self.blocks:
            h, skip, _, _ = block(h, cond, rate)
            skips = skips + skip  # [B, L, H]
        out = self.out_final(torch.relu(self.out_hidden(skips)))  # [B, L, 1]
        return out.transpose(1, 2)  # [B, 1, L]


def ssm_parameter_groups(model: nn.Module, weight_decay: float, ssm_lr: float | None = None) -> list[dict]:
    """AdamW groups: S4D parameters without weight decay (their own group), the rest with it."""
    ssm_ids = {id(p) for m in model.modules() if isinstance(m, S4D) for p in m.parameters()}
    ssm = [p for p in model.parameters() if id(p) in ssm_ids and p.requires_grad]
    rest = [p for p in model.parameters() if id(p) not in ssm_ids and p.requires_grad]
    groups = [{"params": rest, "weight_decay": weight_decay, "name": "main"},
              {"params": ssm, "weight_decay": 0.0, "name": "s4d"}]
    if ssm_lr is not None:
        groups[1]["lr"] = ssm_lr
    return groups
