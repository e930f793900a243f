"""A supervised baseline trained from scratch on the raw faithful windows: EEGNet
(Lawhern et al. 2018), a compact CNN: temporal convolution, depthwise spatial
convolution over the 22 channels, separable convolution, pooling, linear head. It sees
the same splits and labels as the LFT, so the value of the pretrained representation is
measured on the same data.

Shape letters: B batch, K channels, L samples, F filters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class EEGNetConfig:
    n_channels: int = 22
    n_samples: int = 1000
    n_classes: int = 6
    F1: int = 8
    D: int = 2
    F2: int = 16
    kernel: int = 51  # 0.25 s at 200 Hz (EEGNet: 64 samples at 128 Hz); odd for symmetric padding
    dropout: float = 0.25


class EEGNet(nn.Module):
    def __init__(self, config: EEGNetConfig | None = None):
        super().__init__()
        c = self.config = config if config is not None else EEGNetConfig()
        F = c.F1 * c.D
        self.features = nn.Sequential(
            nn.Conv2d(1, c.F1, (1, c.kernel), padding=(0, c.kernel // 2), bias=False),  # temporal filters
            nn.BatchNorm2d(c.F1),
            nn.Conv2d(c.F1, F, (c.n_channels, 1), groups=c.F1, bias=False),  # spatial filters per temporal one
            nn.BatchNorm2d(F), nn.ELU(), nn.AvgPool2d((1, 4)), nn.Dropout(c.dropout),
            nn.Conv2d(F, F, (1, 17), groups=F, padding=(0, 8), bias=False),  # separable: depthwise ...
            nn.Conv2d(F, c.F2, 1, bias=False),  # ... then pointwise
            nn.BatchNorm2d(c.F2), nn.ELU(), nn.AvgPool2d((1, 8)), nn.Dropout(c.dropout),
        )
        self.head = nn.Linear(c.F2 * (c.n_samples // 32), c.n_classes)

    def forward(self, x: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, K, L] (missing channels are zeroed by ``present``) -> logits [B, C]."""
        if present is not None:
            x = x * present[:, :, None].to(x.dtype)
        h = self.features(x[:, None])  # [B, F2, 1, L/32]
        return self.head(h.flatten(1))
