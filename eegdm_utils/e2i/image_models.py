"""The two image models trained here on real images only.

- The **image embedder**, our stand-in for CLIP's image tower (DreamDiffusion's stage C
  aligns EEG to it): a small CNN trained contrastively (SimCLR, Chen et al. 2020) on the
  training images without labels: two random augmentations of an image should embed close
  together and far from the other images of the batch (NT-Xent loss). Frozen afterwards.
- The **judge**, the classifier that scores reconstructions (n-way identification,
  2-way identification in its feature space, a Frechet distance in its features): a
  separate CNN trained with labels on the training images. It is never the embedder, so
  a method cannot score well by matching the model it was aligned to.

Shape letters: B batch, H height, W width, F feature width, E embedding width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ImageNetConfig:
    channels: int = 32
    features: int = 64  # judge feature width / embedder embedding width
    n_classes: int = 10  # judge only
    image_channels: int = 1  # 1 grey, 3 RGB


class ConvTrunk(nn.Module):
    """Two conv stages and a 2x2 pool to a feature vector: [B, C, H, W] -> [B, F]."""

    def __init__(self, channels: int, features: int, image_channels: int = 1):
        super().__init__()
        c = channels
        self.convs = nn.Sequential(
            nn.Conv2d(image_channels, c, 3, padding=1), nn.GELU(), nn.Conv2d(c, c, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.GELU(), nn.AdaptiveAvgPool2d(2))
        self.out = nn.Sequential(nn.Flatten(), nn.Linear(8 * c, features), nn.GELU())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.out(self.convs(images))


class Judge(nn.Module):
    def __init__(self, config: ImageNetConfig):
        super().__init__()
        self.config = config
        self.trunk = ConvTrunk(config.channels, config.features, config.image_channels)
        self.classifier = nn.Linear(config.features, config.n_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.trunk(images)  # [B, F]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.trunk(images))  # [B, K] logits


class ImageEmbedder(nn.Module):
    """SimCLR encoder (the embedding) and projection head (used by the loss only)."""

    def __init__(self, config: ImageNetConfig):
        super().__init__()
        self.config = config
        self.trunk = ConvTrunk(config.channels, config.features, config.image_channels)
        self.projection = nn.Sequential(nn.Linear(config.features, config.features), nn.GELU(),
                                        nn.Linear(config.features, config.features))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-norm embedding [B, E]."""
        return F.normalize(self.trunk(images), dim=-1)


def augment(images: torch.Tensor, generator: torch.Generator, max_shift: int = 1, noise: float = 0.15,
            erase: bool = True) -> torch.Tensor:
    """Random translation (zero padded), contrast/brightness change, noise and a small erased
    square: views of the same image that an embedding should not tell apart."""
    B, _, H, W = images.shape
    padded = F.pad(images, (max_shift,) * 4, value=-1.0)
    dx = torch.randint(0, 2 * max_shift + 1, (B,), generator=generator)
    dy = torch.randint(0, 2 * max_shift + 1, (B,), generator=generator)
    rows = (dy[:, None] + torch.arange(H)[None])  # [B, H]
    cols = (dx[:, None] + torch.arange(W)[None])  # [B, W]
    shifted = padded[torch.arange(B)[:, None, None], :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # [B, C, H, W]
    gain = 1.0 + 0.2 * (torch.rand(B, 1, 1, 1, generator=generator) - 0.5)
    out = gain * shifted + noise * torch.randn(shifted.shape, generator=generator)
    if erase:
        size = max(1, H // 4)
        y0 = torch.randint(0, H - size + 1, (B,), generator=generator)
        x0 = torch.randint(0, W - size + 1, (B,), generator=generator)
        yy, xx = torch.arange(H)[None, :, None], torch.arange(W)[None, None, :]
        box = ((yy >= y0[:, None, None]) & (yy < y0[:, None, None] + size)
               & (xx >= x0[:, None, None]) & (xx < x0[:, None, None] + size))  # [B, H, W]
        keep = torch.rand(B, generator=generator) < 0.5
        out = torch.where((box & keep[:, None, None])[:, None], torch.full_like(out, -1.0), out)
    return out.clamp(-1.5, 1.5).to(images.device)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalised-temperature cross entropy over 2B views [B, E] x 2."""
    z = F.normalize(torch.cat([z1, z2]), dim=-1)  # [2B, E]
    similarity = z @ z.T / temperature  # [2B, 2B]
    similarity.fill_diagonal_(float("-inf"))
    B = len(z1)
    positives = torch.cat([torch.arange(B, 2 * B), torch.arange(0, B)]).to(z.device)
    return F.cross_entropy(similarity, positives)


def simclr_loss(embedder: ImageEmbedder, images: torch.Tensor, generator: torch.Generator,
                temperature: float = 0.2, max_shift: int = 1) -> torch.Tensor:
    view1 = augment(images, generator, max_shift)
    view2 = augment(images, generator, max_shift)
    return nt_xent(embedder.projection(embedder.trunk(view1)), embedder.projection(embedder.trunk(view2)), temperature)


def judge_loss(judge: Judge, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator,
               max_shift: int = 1) -> torch.Tensor:
    """Cross entropy on lightly augmented images (shifts and noise, no erasing)."""
    views = augment(images, generator, max_shift, noise=0.1, erase=False)
    return F.cross_entropy(judge(views), labels, label_smoothing=0.05)


@torch.no_grad()
def batched(fn, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Apply ``fn`` to ``images`` in batches (evaluation only)."""
    return torch.cat([fn(images[i: i + batch_size]) for i in range(0, len(images), batch_size)])
