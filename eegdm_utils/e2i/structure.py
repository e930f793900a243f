"""What the structural branch predicts from EEG and the ControlNet reads: a G x G code of the
image, and the map [1, H, W] that the ControlNet is given for a code.

- :class:`BlockMeans`: the code is the image's mean intensity over a G x G partition; the
  map is that code upsampled (nearest). No training; the simplest structure there is.
- :class:`StructureAutoencoder` (SGDM-style): the code is the bottleneck of a small
  convolutional autoencoder of the image, trained on the training images to reconstruct
  them and, as structural supervision, their edges (Sobel gradient magnitude); the map is
  the decoder's reconstruction. It learns which G x G numbers best carry the image's shape.

Both have ``encode(images [B, C, H, W]) -> codes [B, G, G]`` and ``forward(codes) -> maps
[B, 1, H, W]`` in about [-1, 1], so the rest of the pipeline does not care which it holds. A map
has one channel whatever the image's: structure is grey-level (RGB images are compared through
their channel mean).

Shape letters: B batch, C image channels, G code side, H height, W width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .training import index_batches, loop, train


class BlockMeans(nn.Module):
    """Codes are G x G block means of the image; maps are the codes upsampled."""

    def __init__(self, grid: int, image_size: int):
        super().__init__()
        if image_size % grid:
            raise ValueError(f"the code side {grid} must divide the image size {image_size}")
        self.grid, self.image_size = grid, image_size

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(images, self.image_size // self.grid).mean(dim=1)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return F.interpolate(codes[:, None], size=(self.image_size, self.image_size), mode="nearest").clamp(-1.5, 1.5)


@dataclass
class StructureConfig:
    grid: int = 4  # code side G
    image_size: int = 8
    image_channels: int = 1  # 1 grey, 3 RGB
    channels: int = 32
    edge_weight: float = 1.0  # weight of the edge (structure) term beside the pixel term


class StructureAutoencoder(nn.Module):
    """Image [B, C, H, W] -> code [B, G, G] (tanh) -> map [B, 1, H, W] (tanh)."""

    def __init__(self, config: StructureConfig):
        super().__init__()
        if config.image_size % config.grid:
            raise ValueError(f"the code side {config.grid} must divide the image size {config.image_size}")
        self.config = config
        c = config.channels
        self.encoder = nn.Sequential(
            nn.Conv2d(config.image_channels, c, 3, padding=1), nn.GELU(), nn.Conv2d(c, c, 3, padding=1), nn.GELU(),
            nn.AdaptiveAvgPool2d(config.grid), nn.Conv2d(c, c, 1), nn.GELU(), nn.Conv2d(c, 1, 1), nn.Tanh())
        self.decoder = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.GELU(),
            nn.Upsample(size=(config.image_size, config.image_size), mode="bilinear", align_corners=False),
            nn.Conv2d(c, c, 3, padding=1), nn.GELU(), nn.Conv2d(c, 1, 3, padding=1), nn.Tanh())

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)[:, 0]

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(codes[:, None])


def sobel_edges(images: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude [B, 1, H, W] of images [B, 1, H, W] (Sobel, replicated borders)."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=images.device) / 8.0
    kernels = torch.stack([kx, kx.T])[:, None]  # [2, 1, 3, 3]
    gradients = F.conv2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), kernels)  # [B, 2, H, W]
    return gradients.pow(2).sum(1, keepdim=True).add(1e-8).sqrt()


def structure_loss(model: StructureAutoencoder, images: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Pixel MSE of the map against the (grey-level) image plus ``edge_weight`` x MSE of their edges."""
    maps = model(model.encode(images))
    grey = images.mean(dim=1, keepdim=True)
    pixels = F.mse_loss(maps, grey)
    edges = F.mse_loss(sobel_edges(maps), sobel_edges(grey))
    return pixels + model.config.edge_weight * edges, {"pixels": pixels.detach(), "edges": edges.detach()}


def fit_structure_autoencoder(model: StructureAutoencoder, images: torch.Tensor, train_images: torch.Tensor,
                              steps: int, batch: int, seed: int, lr: float = 2.0e-3) -> dict:
    """Train on batches of the training images ``images[train_images]``; :func:`.training.train`'s result."""
    draw = index_batches(train_images, batch, seed)
    return train(model.parameters(), lambda step: structure_loss(model, images[draw()]),
                 loop(steps, batch, lr, warmup_steps=max(1, steps // 10)),
                 desc="structure autoencoder", log_every=25)
