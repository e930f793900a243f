"""The stimuli: scikit-learn's bundled handwritten digits (1,797 images, 8x8 pixels, 10
classes), optionally upsampled, scaled to [-1, 1]; splits by image.

Shape letters: I images, H height, W width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASS_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))
SPLITS: tuple[str, ...] = ("train", "val", "test")


def load_digits_images(image_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Images [I, H, W] in [-1, 1] (float32) and labels [I] (int64).

    The digits are 8x8 with 17 grey levels (0..16); ``image_size`` 16 or 32 upsamples them
    bilinearly, which is what a larger generator would want.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32) / 8.0 - 1.0  # [I, 8, 8] in [-1, 1]
    if image_size % 8 or image_size < 8:
        raise ValueError(f"image_size must be a multiple of 8 (the digits are 8x8), got {image_size}")
    if image_size != 8:
        import torch
        import torch.nn.functional as F

        up = F.interpolate(torch.from_numpy(images)[:, None], size=(image_size, image_size), mode="bilinear",
                           align_corners=False)  # [I, 1, H, W]
        images = up[:, 0].clamp(-1, 1).numpy()
    return np.ascontiguousarray(images), digits.target.astype(np.int64)


@dataclass(frozen=True)
class ImageSplit:
    """Which split each image belongs to: every image is in exactly one."""

    split: np.ndarray  # [I] of "train" / "val" / "test"

    def indices(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; expected one of {SPLITS}")
        return np.flatnonzero(self.split == name)

    def counts(self) -> dict[str, int]:
        return {name: int((self.split == name).sum()) for name in SPLITS}


def split_by_image(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> ImageSplit:
    """Stratified split of the images (not the trials): no image is in two splits.

    Seeded on its own so that the split does not move with the model seed.
    """
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction {val_fraction} and test_fraction {test_fraction} must be in (0, 1) with sum < 1")
    rng = np.random.default_rng([seed, 5])
    split = np.full(len(labels), "train", dtype=object)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(test_fraction * len(idx)))
        n_val = int(round(val_fraction * len(idx)))
        split[idx[:n_test]] = "test"
        split[idx[n_test:n_test + n_val]] = "val"
    return ImageSplit(split.astype(str))
