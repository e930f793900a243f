"""The paired stimulus-EEG dataset on disk: what notebook 80 writes and notebook 85 reads.

Layout of ``run_dir/e2i/paired/``::

    meta.json     simulation config, image size, split counts, shapes, channel names, checks
    images.npy    [I, H, W] (grey) or [I, H, W, 3] (RGB) float32 in [-1, 1]
    labels.npy    [I] int64
    split.npy     [I] "train" / "val" / "test" (by image: no image in two splits)
    eeg.npy       [N, C, L] float16 microvolts (float16 halves the file; EEG needs no more)
    table.npz     per trial: image, label, subject, session, state, position

Shape letters: I images, H height, W width, N trials, C channels, L samples.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.files import atomic_write_json, read_json
from .stimuli import SPLITS, ImageSplit
from .visual_eeg import VisualEEG

FORMAT_VERSION = 1
HINT = "run notebooks/80_eeg_encoder_pretrain first with the same run_dir"


@dataclass
class PairedDataset:
    images: np.ndarray  # [I, H, W] grey or [I, H, W, 3] RGB
    labels: np.ndarray  # [I]
    split: ImageSplit
    eeg: np.ndarray  # [N, C, L] float32 microvolts
    table: dict  # per-trial arrays
    meta: dict

    @property
    def image_channels(self) -> int:
        return 1 if self.images.ndim == 3 else int(self.images.shape[-1])

    @property
    def n_classes(self) -> int:
        return int(self.labels.max()) + 1

    def images_chw(self) -> np.ndarray:
        """The images as the models take them: [I, C, H, W] float32 (C = 1 grey, 3 RGB)."""
        images = self.images[:, None] if self.images.ndim == 3 else self.images.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(images, dtype=np.float32)

    def trials(self, split: str) -> np.ndarray:
        """Indices of the trials whose image is in ``split``."""
        return np.flatnonzero(np.isin(self.table["image"], self.split.indices(split)))

    def one_trial_per_image(self, split: str, limit: int = 0, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
        """(images, trials): for each image of ``split`` (a seeded draw of ``limit`` of them when
        ``limit`` is set and smaller), one single trial: the first repetition, the subjects taking
        turns over the images in order."""
        chosen = self.split.indices(split)
        if limit and limit < len(chosen):
            chosen = np.sort(np.random.default_rng(seed).choice(chosen, limit, replace=False))
        subjects = np.unique(self.table["subject"])
        first: dict[tuple[int, int], int] = {}
        for n, (i, s) in enumerate(zip(self.table["image"], self.table["subject"])):
            first.setdefault((int(i), int(s)), n)
        trials = np.array([first[(int(i), int(subjects[k % len(subjects)]))] for k, i in enumerate(chosen)], dtype=np.int64)
        return chosen, trials


def save_paired_dataset(folder: str | os.PathLike, images: np.ndarray, labels: np.ndarray, split: ImageSplit,
                        data: VisualEEG, meta: dict) -> Path:
    """Write into a temporary folder, then rename it into place (no half-written dataset)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        np.save(tmp / "images.npy", images.astype(np.float32))
        np.save(tmp / "labels.npy", labels.astype(np.int64))
        np.save(tmp / "split.npy", split.split.astype(str))
        np.save(tmp / "eeg.npy", data.eeg.astype(np.float16))
        np.savez(tmp / "table.npz", **data.table())
        full_meta = {"version": FORMAT_VERSION, **meta, **data.meta, "eeg_shape": list(data.eeg.shape),
                     "n_images": int(len(images)), "image_shape": list(images.shape[1:]),
                     "split_counts": split.counts()}
        atomic_write_json(tmp / "meta.json", full_meta)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load_paired_dataset(folder: str | os.PathLike) -> PairedDataset:
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{folder}: no paired stimulus-EEG dataset here (no meta.json); {HINT}")
    meta = read_json(meta_path)
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"{meta_path}: dataset format {meta.get('version')} is not {FORMAT_VERSION}; {HINT}")
    arrays = {}
    for name in ("images", "labels", "split", "eeg"):
        path = folder / f"{name}.npy"
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing; the dataset is incomplete, {HINT}")
        arrays[name] = np.load(path)
    shape = arrays["images"].shape
    if not (len(shape) == 3 or (len(shape) == 4 and shape[-1] == 3)) or shape[1] != shape[2]:
        raise ValueError(f"{folder / 'images.npy'}: shape {shape} is neither [I, H, H] (grey) nor [I, H, H, 3] (RGB)")
    table = dict(np.load(folder / "table.npz"))
    if list(arrays["eeg"].shape) != meta["eeg_shape"]:
        raise ValueError(f"{folder / 'eeg.npy'}: shape {arrays['eeg'].shape} differs from meta.json {meta['eeg_shape']}")
    if set(np.unique(arrays["split"])) - set(SPLITS):
        raise ValueError(f"{folder / 'split.npy'}: unknown split names {set(np.unique(arrays['split'])) - set(SPLITS)}")
    if len(table["image"]) != len(arrays["eeg"]) or table["image"].max() >= len(arrays["images"]):
        raise ValueError(f"{folder / 'table.npz'}: the trial table does not match eeg.npy / images.npy")
    return PairedDataset(arrays["images"], arrays["labels"], ImageSplit(arrays["split"]),
                         arrays["eeg"].astype(np.float32), table, meta)
