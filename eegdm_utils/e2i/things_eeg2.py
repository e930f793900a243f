"""Real paired data: the THINGS-EEG2 preprocessed release (Gifford et al. 2022, NeuroImage 264)
written in the paired stimulus-EEG format of :mod:`.paired_data`.

The release is not shipped and nothing is downloaded: point :func:`write_things_eeg2` at a folder
laid out as the release (and its image set)::

    root/sub-01/preprocessed_eeg_training.npy  a pickled dict: preprocessed_eeg_data
                                                [16540 images, 4 repetitions, 17 channels, 100 samples],
                                                ch_names [17], times [100] (s; 100 Hz, -0.2 to 0.8 s)
    root/sub-01/preprocessed_eeg_test.npy      the same for the 200 test images x 80 repetitions
    root/image_metadata.npy                    a pickled dict: train_img_concepts, train_img_files,
                                                test_img_concepts, test_img_files (one per image, in
                                                the order of the EEG arrays)
    root/training_images/<concept>/<file>      the stimuli (JPEG)
    root/test_images/<concept>/<file>

The protocol is THINGS' zero-shot one: the 200 test concepts never occur in training, so the test
split holds classes no model has seen. Validation holds out whole training concepts for the same
reason. Each trial is one repetition of one image for one subject (``session`` = subject x
repetition; the release does not keep the presentation order, so ``position`` is -1 and
``state`` equals ``session``). Images are read in grey levels (``channels=1``) or RGB
(``channels=3``), resized to ``image_size`` and scaled to [-1, 1].

Shape letters: I images, R repetitions, C channels, L samples, H height, W width.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .paired_data import save_paired_dataset
from .stimuli import ImageSplit
from .visual_eeg import VisualEEG

PARTS = {"train": "training", "test": "test"}
METADATA_KEYS = ("train_img_concepts", "train_img_files", "test_img_concepts", "test_img_files")


def _load_dict(path: Path, keys) -> dict:
    """A pickled dictionary saved with np.save, with ``keys`` present (clear errors otherwise)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; expected the THINGS-EEG2 preprocessed release layout "
                                "(see eegdm_utils.e2i.things_eeg2)")
    try:
        value = np.load(path, allow_pickle=True)
        value = value.item() if isinstance(value, np.ndarray) and value.dtype == object and value.shape == () else value
    except Exception as error:  # a truncated or foreign file
        raise ValueError(f"{path}: not a readable THINGS-EEG2 file ({type(error).__name__}: {error})") from error
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a pickled dictionary, got {type(value).__name__}")
    missing = [k for k in keys if k not in value]
    if missing:
        raise ValueError(f"{path}: keys {missing} missing (has {sorted(value)})")
    return value


def read_subject(root: str | os.PathLike, subject: int, part: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    """One subject's EEG of one part (``train`` or ``test``): data [I, R, C, L], channel names, times (s)."""
    path = Path(root) / f"sub-{subject:02d}" / f"preprocessed_eeg_{PARTS[part]}.npy"
    content = _load_dict(path, ("preprocessed_eeg_data", "ch_names", "times"))
    data = np.asarray(content["preprocessed_eeg_data"])
    names, times = [str(n) for n in content["ch_names"]], np.asarray(content["times"], dtype=np.float64)
    if data.ndim != 4:
        raise ValueError(f"{path}: preprocessed_eeg_data must be [images, repetitions, channels, samples], "
                         f"got shape {data.shape}")
    if data.shape[2] != len(names) or data.shape[3] != len(times):
        raise ValueError(f"{path}: data shape {data.shape} does not match {len(names)} ch_names and {len(times)} times")
    if not np.isfinite(data).all():
        raise ValueError(f"{path}: preprocessed_eeg_data holds NaN or infinite values")
    return data, names, times


def read_image(path: Path, image_size: int, channels: int) -> np.ndarray:
    """[H, W] (grey) or [H, W, 3] (RGB) float32 in [-1, 1]."""
    from PIL import Image

    if not path.exists():
        raise FileNotFoundError(f"{path}: stimulus image missing (listed in image_metadata.npy)")
    with Image.open(path) as image:
        image = image.convert("L" if channels == 1 else "RGB").resize((image_size, image_size), Image.BICUBIC)
        return np.asarray(image, dtype=np.float32) / 127.5 - 1.0


def write_things_eeg2(root: str | os.PathLike, folder: str | os.PathLike, subjects, image_size: int = 32,
                      channels: int = 1, train_concepts: int = 0, test_repetitions: int = 0,
                      val_fraction: float = 0.1, seed: int = 0, microvolts_per_unit: float | None = None) -> Path:
    """Write ``subjects`` of the release under ``root`` as a paired dataset in ``folder``.

    ``train_concepts`` > 0 keeps the first that many training concepts (10 images each in the
    release), ``test_repetitions`` > 0 the first that many of the 80 test repetitions: a
    laptop-sized subset. ``val_fraction`` of the kept training concepts (whole concepts, seeded)
    become the validation split. ``microvolts_per_unit``: the scale of the release's values; by
    default 1e6 if their median magnitude is below 1e-3 (volts), else 1. Nothing is written
    unless everything reads: an existing dataset in ``folder`` stays as it was on any error.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    root = Path(root)
    subjects = [int(s) for s in subjects]
    if not subjects:
        raise ValueError("no subjects given")
    meta_path = root / "image_metadata.npy"
    metadata = _load_dict(meta_path, METADATA_KEYS)
    concepts = {p: [str(c) for c in metadata[f"{p}_img_concepts"]] for p in PARTS}
    files = {p: [str(f) for f in metadata[f"{p}_img_files"]] for p in PARTS}
    for p in PARTS:
        if len(concepts[p]) != len(files[p]):
            raise ValueError(f"{meta_path}: {len(concepts[p])} {p}_img_concepts but {len(files[p])} {p}_img_files")
    overlap = set(concepts["train"]) & set(concepts["test"])
    if overlap:
        raise ValueError(f"{meta_path}: concepts in both training and test ({sorted(overlap)[:3]} ...): not the "
                         "zero-shot split of the release")

    train_names = list(dict.fromkeys(concepts["train"]))  # first-seen order
    if train_concepts > 0:
        train_names = train_names[:train_concepts]
    keep = {"train": np.flatnonzero(np.isin(concepts["train"], train_names)),
            "test": np.arange(len(concepts["test"]))}
    rng = np.random.default_rng([seed, 41])
    n_val = int(round(val_fraction * len(train_names)))
    if not 0 <= n_val < len(train_names):
        raise ValueError(f"val_fraction {val_fraction} leaves no training concept of {len(train_names)}")
    val_names = set(rng.choice(train_names, n_val, replace=False).tolist()) if n_val else set()
    class_names = train_names + list(dict.fromkeys(concepts["test"]))
    class_of = {name: k for k, name in enumerate(class_names)}

    images, labels, split = [], [], []
    for p, folder_name in (("train", "training_images"), ("test", "test_images")):
        for i in keep[p]:
            images.append(read_image(root / folder_name / concepts[p][i] / files[p][i], image_size, channels))
            labels.append(class_of[concepts[p][i]])
            split.append("test" if p == "test" else "val" if concepts[p][i] in val_names else "train")
    offset = {"train": 0, "test": len(keep["train"])}  # image index of each part's first kept image

    parts, names0, times0 = [], None, None
    for subject in subjects:
        for p in PARTS:
            data, names, times = read_subject(root, subject, p)
            if data.shape[0] != len(concepts[p]):
                raise ValueError(f"{root}/sub-{subject:02d}/preprocessed_eeg_{PARTS[p]}.npy: {data.shape[0]} images "
                                 f"but image_metadata.npy lists {len(concepts[p])}")
            if names0 is None:
                names0, times0 = names, times
            elif names != names0 or not np.allclose(times, times0):
                raise ValueError(f"{root}/sub-{subject:02d}/preprocessed_eeg_{PARTS[p]}.npy: channels or times "
                                 "differ from the first file read")
            data = data[keep[p]]
            if p == "test" and test_repetitions > 0:
                data = data[:, :test_repetitions]
            n_img, n_rep = data.shape[:2]
            image = np.repeat(offset[p] + np.arange(n_img), n_rep)
            repetition = np.tile(np.arange(n_rep), n_img)
            session = subject * 1000 + repetition  # subject x repetition
            parts.append(dict(eeg=data.reshape(n_img * n_rep, *data.shape[2:]).astype(np.float32), image=image,
                              label=np.asarray(labels)[image], subject=np.full(len(image), subject),
                              session=session, state=session, position=np.full(len(image), -1)))
    merged = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    scale = microvolts_per_unit
    if scale is None:
        scale = 1e6 if np.median(np.abs(merged["eeg"])) < 1e-3 else 1.0
    merged["eeg"] = merged["eeg"] * np.float32(scale)
    sfreq = float(round(1.0 / np.median(np.diff(times0)), 6))
    eeg = VisualEEG(**merged, meta={"sfreq": sfreq, "channel_names": names0, "units": "uV",
                                    "times_s": [float(t) for t in times0]})
    image_array = np.stack(images).astype(np.float32)
    meta = {"source": "THINGS-EEG2 preprocessed release", "root": root.name, "subjects": subjects,
            "class_names": class_names, "image_channels": channels, "microvolts_per_unit": scale,
            "held_out_classes": "test concepts never occur in training (zero-shot); validation holds out "
                                f"{len(val_names)} training concepts"}
    return save_paired_dataset(folder, image_array, np.asarray(labels, dtype=np.int64), ImageSplit(np.asarray(split)),
                               eeg, meta)
