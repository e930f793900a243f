"""Torch datasets over a data store: the *faithful* product (one sample per annotation
line, [22, L]) and the *pretrain* product (one present channel of a unique window per
sample, [1, L] with its channel index).

Shape letters: K TCP channels (22), L window length.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .mulaw import staged_mu_law
from .store import EEGStore


def merge_lines(window_index: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Annotation lines -> unique (window, label) examples and how many lines each stands for.

    A classifier that reads the whole montage sees the same input for every line of a
    window, so lines of one window with one label are one example with that weight: the
    weighted loss (and any confusion matrix) equals the per-line one, at a fraction of
    the cost."""
    pairs, counts = np.unique(np.stack([window_index, labels], axis=1), axis=0, return_counts=True)
    return pairs[:, 0], pairs[:, 1], counts


class _Lines(Dataset):
    """Annotation lines of a split (optionally a subset), merged into weighted examples."""

    def __init__(self, store: EEGStore, split: str, indices: np.ndarray | None = None, merge: bool = True):
        self.present = store.present(split)  # [U, K]
        lines = store.faithful(split)
        keep = np.arange(len(lines["label"])) if indices is None else np.asarray(indices)
        window_index, labels = lines["window"][keep], lines["label"][keep].astype(np.int64)
        self.channels = lines["channel"][keep].astype(np.int64)
        if merge:
            window_index, labels, weights = merge_lines(window_index, labels)
        else:
            weights = np.ones(len(labels), dtype=np.int64)
        self.window_index, self.labels, self.weights = window_index, labels, weights.astype(np.float32)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_lines(self) -> int:
        return int(self.weights.sum())

    def _input(self, w: int) -> torch.Tensor:
        """The model input of window ``w``."""
        raise NotImplementedError

    def __getitem__(self, i: int):
        w = int(self.window_index[i])
        return self._input(w), torch.from_numpy(self.present[w].copy()), int(self.labels[i]), float(self.weights[i])


class FaithfulDataset(_Lines):
    """(signal [K, L] float32, present [K] bool, label, weight) per (window, label) example
    (``merge=False``: per annotation line, weight 1; ``channels`` then holds each line's
    annotated channel).

    Missing channels are NaN in the store; here they become 0 *and* are flagged False in
    ``present``, which models must use (the LFT masks them in cross-attention).
    ``indices`` selects a subset of lines (label fractions).
    """

    def __init__(self, store: EEGStore, split: str, mu_law: bool = False, indices: np.ndarray | None = None,
                 merge: bool = True):
        super().__init__(store, split, indices, merge)
        self.windows = store.windows(split)  # [U, K, L] memmap
        self.mu_law = mu_law

    def _input(self, w: int) -> torch.Tensor:
        x = torch.from_numpy(np.nan_to_num(np.asarray(self.windows[w], dtype=np.float32), nan=0.0))  # [K, L]
        return staged_mu_law(x) if self.mu_law else x


class PretrainDataset(Dataset):
    """(signal [1, L] float32, channel index) for every present channel of every unique window."""

    def __init__(self, store: EEGStore, split: str, mu_law: bool = True, max_samples: int | None = None,
                 seed: int = 0):
        self.windows = store.windows(split)  # [U, K, L]
        present = store.present(split)  # [U, K]
        self.pairs = np.argwhere(present)  # [M, 2] (window, channel)
        if max_samples is not None and max_samples < len(self.pairs):
            rng = np.random.default_rng(seed)
            self.pairs = self.pairs[np.sort(rng.choice(len(self.pairs), max_samples, replace=False))]
        self.mu_law = mu_law

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        w, k = self.pairs[i]
        x = torch.from_numpy(np.array(self.windows[w, k], dtype=np.float32))[None]  # [1, L]
        if self.mu_law:
            x = staged_mu_law(x)
        return x, int(k)


class LatentLines(_Lines):
    """(latents [n, P, K, H] float32, present [K] bool, label, weight) per (window, label)
    example, from a latent cache (NaN of missing channels -> 0)."""

    def __init__(self, cache, store: EEGStore, split: str, indices: np.ndarray | None = None, merge: bool = True):
        super().__init__(store, split, indices, merge)
        self.latents = cache.latents(split)  # [U, n, P, K, H] memmap

    def _input(self, w: int) -> torch.Tensor:
        return torch.from_numpy(np.nan_to_num(np.asarray(self.latents[w], dtype=np.float32), nan=0.0))
