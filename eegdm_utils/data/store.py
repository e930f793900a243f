"""The preprocessed data store: contiguous arrays plus JSON metadata.

Layout of a store folder::

    meta.json                    source, preprocessing parameters, shapes, class counts,
                                 skipped files and lines with reasons, missing channels
    <split>/windows.f32          [U, 22, L] float32, C order (np.memmap): unique windows
    <split>/present.npy          [U, 22] bool: channel derivable (missing ones hold NaN)
    <split>/window_file.npy      [U] int32 index into meta["files"]
    <split>/window_start.npy     [U] float64 event start (s) of each window
    <split>/faithful_window.npy  [N] int32: window of each annotation line
    <split>/faithful_channel.npy [N] int8: its TCP channel (-1: whole montage)
    <split>/faithful_label.npy   [N] int8: its class 0..5

Two products read from it: *faithful* (one sample per annotation line: [22, L], channel,
label; lines sharing a window share its array) and *pretrain* (every present channel of
every unique window is one sample [1, L] with its channel index).

A store is written into a temporary folder and renamed into place, so an interrupted
or failed build leaves any existing store untouched. Building again with the same
parameters reuses it; other parameters raise an error naming the keys that differ.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..core.files import atomic_write_json, read_json
from ..core.identity import differences
from .edf import EDFError
from .montage import N_TCP, TCP_NAMES
from .preprocess import PreprocessConfig, cut_windows, load_tcp
from .recordings import DataError, EventLine, RecordingSpec, assign_validation, check_event

SPLITS = ("train", "val", "test")
STORE_VERSION = 1


class StoreMismatch(ValueError):
    """A store exists with other parameters than those asked for."""


class StoreMeta:
    """What a store (or a view of one) says about itself, from its ``meta``."""

    meta: dict

    @property
    def class_names(self) -> list[str]:
        return list(self.meta["class_names"])

    @property
    def window_samples(self) -> int:
        return int(self.meta["preprocess"]["window_samples"])

    def class_counts(self, split: str) -> dict[str, int]:
        return dict(self.meta["class_counts"][split])


class EEGStore(StoreMeta):
    """Read access to a built store (arrays are memory-mapped, read-only)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{self.path}: no data store here (no meta.json); run notebooks/10_data_prep first")
        self.meta = read_json(meta_path)
        if self.meta.get("version") != STORE_VERSION:
            raise DataError(f"{meta_path}: store version {self.meta.get('version')} is not {STORE_VERSION}; rebuild it")
        for split, shape in self.meta["shapes"].items():
            f = self.path / split / "windows.f32"
            expected = int(np.prod(shape)) * 4
            if not f.exists() or f.stat().st_size != expected:
                raise DataError(f"{f}: expected {expected} bytes for shape {shape}; the store is incomplete, rebuild it")
        skipped = self.meta.get("skipped_files", [])
        if skipped and not self.meta["n_faithful"].get("train"):
            raise DataError(f"{self.path}: the store holds no training windows: {_skipped_reasons(skipped)}; "
                            "fix or remove these files and rebuild it")

    def windows(self, split: str) -> np.ndarray:
        shape = tuple(self.meta["shapes"][split])
        if shape[0] == 0:
            return np.zeros(shape, dtype=np.float32)
        return np.memmap(self.path / split / "windows.f32", dtype=np.float32, mode="r", shape=shape)

    def array(self, split: str, name: str) -> np.ndarray:
        return np.load(self.path / split / f"{name}.npy")

    def present(self, split: str) -> np.ndarray:
        return self.array(split, "present")

    def faithful(self, split: str) -> dict[str, np.ndarray]:
        return {k: self.array(split, f"faithful_{k}") for k in ("window", "channel", "label")}

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}: {self.meta['n_faithful'][s]} lines / {self.meta['shapes'][s][0]} windows" for s in SPLITS)
        return f"EEGStore({self.path}; {sizes})"


def _write_split(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        np.save(folder / f"{name}.npy", arr)


def build_store(
    path: str | os.PathLike,
    specs: list[RecordingSpec],
    class_names: list[str],
    config: PreprocessConfig,
    source: dict,
    errors: str = "raise",
    overwrite: bool = False,
    progress=None,
) -> EEGStore:
    """Preprocess ``specs`` into a store at ``path`` and return it.

    ``errors``: "raise" stops at the first unusable file or line with an error naming
    it and the reason; "skip" leaves it out and records it under ``meta["skipped"]``.
    ``source`` describes where the recordings came from (part of the store's identity).
    """
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', not {errors!r}")
    path = Path(path)
    params = {"source": source, "preprocess": asdict(config), "class_names": list(class_names), "errors": errors}
    if (path / "meta.json").exists():
        existing = read_json(path / "meta.json")
        if existing.get("params") == json.loads(json.dumps(params, default=str)) and not overwrite:
            return EEGStore(path)
        if not overwrite:
            keys = differences(existing.get("params", {}), json.loads(json.dumps(params, default=str)))
            raise StoreMismatch(
                f"{path}: a store built with other parameters exists ({', '.join(keys)} differ); "
                "use another run_dir, or pass overwrite=True to replace it"
            )

    specs = [RecordingSpec(s.path, s.split, s.subject, list(s.events), s.label_source, s.whole_file_label) for s in specs]
    val_subjects = assign_validation(specs, config.val_fraction, config.split_seed)
    tmp = path.with_name(f".{path.name}.building-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        meta = _build_into(tmp, specs, class_names, config, errors, progress)
        check_splits(meta, specs, path)
        meta.update(version=STORE_VERSION, params=params, val_subjects=val_subjects,
                    built_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
        atomic_write_json(tmp / "meta.json", meta)
        _replace_folder(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return EEGStore(path)


def _replace_folder(new: Path, target: Path) -> None:
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        try:
            os.replace(new, target)
        except BaseException:  # interrupted between the two renames: put the old store back
            os.replace(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(new, target)


def _build_into(tmp: Path, specs, class_names, config: PreprocessConfig, errors: str, progress) -> dict:
    n_classes = len(class_names)
    files = [str(s.path) for s in specs]
    skipped_files, skipped_lines, dropped_channels, missing_channels = [], [], {}, Counter()
    shapes, n_faithful, n_pretrain, class_counts, subjects = {}, {}, {}, {}, {}
    n_whole_file_lines = 0  # lines made by tiling files labelled as a whole (no annotation line behind them)
    L = config.window_samples
    for split in SPLITS:
        folder = tmp / split
        folder.mkdir(parents=True, exist_ok=True)
        present_rows, window_file, window_start = [], [], []
        f_window, f_channel, f_label = [], [], []
        split_specs = [(i, s) for i, s in enumerate(specs) if s.split == split]
        iterator = progress(split_specs, desc=f"preprocess {split}") if progress and split_specs else split_specs
        with open(folder / "windows.f32", "wb") as out:
            for file_index, spec in iterator:
                try:
                    recording = load_tcp(spec.path, config)
                except (EDFError, DataError) as e:
                    if errors == "raise":
                        raise
                    skipped_files.append({"file": str(spec.path), "reason": str(e)})
                    continue
                if recording.dropped:
                    dropped_channels[str(spec.path)] = recording.dropped
                for k in np.flatnonzero(~recording.present):
                    missing_channels[TCP_NAMES[k]] += 1
                events = _usable_events(spec, recording.duration, n_classes, config, errors, skipped_lines)
                intervals = sorted({(e.start, e.end) for e in events})
                if not intervals:
                    continue
                try:
                    windows = cut_windows(recording, intervals, config)  # [W, K, L]
                except DataError as e:
                    if errors == "raise":
                        raise
                    skipped_files.append({"file": str(spec.path), "reason": str(e)})
                    continue
                base = len(window_file)
                slot = {iv: base + i for i, iv in enumerate(intervals)}
                out.write(np.ascontiguousarray(windows, dtype=np.float32).tobytes())
                present_rows += [recording.present] * len(intervals)
                window_file += [file_index] * len(intervals)
                window_start += [iv[0] for iv in intervals]
                n_whole_file_lines += len(events) if spec.whole_file_label is not None else 0
                for e in events:
                    f_window.append(slot[(e.start, e.end)])
                    f_channel.append(e.channel)
                    f_label.append(e.label)
                subjects.setdefault(split, set()).add(spec.subject)
        U = len(window_file)
        _write_split(folder, {
            "present": np.array(present_rows, dtype=bool).reshape(U, N_TCP),
            "window_file": np.array(window_file, dtype=np.int32),
            "window_start": np.array(window_start, dtype=np.float64),
            "faithful_window": np.array(f_window, dtype=np.int32),
            "faithful_channel": np.array(f_channel, dtype=np.int8),
            "faithful_label": np.array(f_label, dtype=np.int8),
        })
        shapes[split] = [U, N_TCP, L]
        n_faithful[split] = len(f_label)
        n_pretrain[split] = int(np.array(present_rows, dtype=bool).sum())
        counts = np.bincount(np.array(f_label, dtype=np.int64), minlength=n_classes)
        class_counts[split] = {c: int(n) for c, n in zip(class_names, counts)}
    return {
        "class_names": list(class_names),
        "channel_names": list(TCP_NAMES),
        "preprocess": {**asdict(config), "window_samples": L},
        "files": files,
        "shapes": shapes,
        "dtype": "float32",
        "n_faithful": n_faithful,
        "n_whole_file_lines": n_whole_file_lines,
        "n_pretrain": n_pretrain,
        "class_counts": class_counts,
        "subjects": {s: sorted(v) for s, v in subjects.items()},
        "skipped_files": skipped_files,
        "skipped_lines": skipped_lines,
        "dropped_channels": dropped_channels,
        "missing_channel_rule": (
            "A TCP channel that cannot be derived exactly from the recorded channels is missing: "
            "stored as NaN with present=False, left out of the pretrain set and masked in the "
            f"LFT's cross-attention. Recordings with fewer than {config.min_channels} derivable "
            "channels are not used."
        ),
        "missing_channels": dict(missing_channels),
    }


def _skipped_reasons(skipped: list[dict], limit: int = 10) -> str:
    """'file: reason; ...' of skipped files or lines (the reason names the file when it can)."""
    items = [s["reason"] if s["file"] in s["reason"] else f"{s['file']}: {s['reason']}" for s in skipped[:limit]]
    more = f"; and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return "; ".join(items) + more


def check_splits(meta: dict, specs: list[RecordingSpec], where) -> None:
    """After skipping unusable files or lines: a split that had recordings must still hold annotation
    lines, and the training split at least two classes when its recordings had them; otherwise a
    ``DataError`` naming the skipped files (or lines) and why. Nothing is checked when nothing was skipped."""
    skipped = meta["skipped_files"] or meta["skipped_lines"]
    if not skipped:
        return
    for split in SPLITS:
        recordings = [s for s in specs if s.split == split]
        if not recordings:
            continue  # a split with no recordings at all is the caller's choice (e.g. val_fraction 0)
        if meta["n_faithful"][split] == 0:
            problem = f"the {split} split is empty ({len(recordings)} recording(s) gave no usable window)"
        elif split == "train":
            wanted = {e.label for s in recordings for e in s.events} | {
                s.whole_file_label for s in recordings if s.whole_file_label is not None}
            kept = [c for c, n in meta["class_counts"][split].items() if n]
            if len(wanted) < 2 or len(kept) >= 2:
                continue
            problem = (f"the train split holds only the class {', '.join(kept) or 'none'} (its recordings had "
                       f"{len(wanted)} classes): too few to train on")
        else:
            continue
        raise DataError(f"{where}: {problem} after skipping unusable input: {_skipped_reasons(skipped)}")


def check_store(store: EEGStore, specs: list[RecordingSpec]) -> None:
    """What notebook 10 checks after a build, for timed and whole-file labels alike: every window
    is [22, window_samples]; every annotation line of ``specs`` is in the faithful product or
    was skipped with a reason (lines made by tiling whole-file labels counted as such), unless
    whole files were skipped; no test subject is also a training or validation subject; a validation
    split exists when ``val_fraction`` asks for one.
    Raises ``DataError`` naming the store and what does not add up."""
    meta = store.meta
    for split in SPLITS:
        shape = tuple(meta["shapes"][split][1:])
        if shape != (N_TCP, store.window_samples):
            raise DataError(f"{store.path}: {split} windows are {shape}, not ({N_TCP}, {store.window_samples})")
    timed = sum(len(s.events) for s in specs if s.whole_file_label is None)
    written = sum(meta["n_faithful"].values()) - meta.get("n_whole_file_lines", 0)
    if written + len(meta["skipped_lines"]) != timed and not meta["skipped_files"]:
        raise DataError(f"{store.path}: {timed} annotation lines in the label files, but {written} in the store and "
                        f"{len(meta['skipped_lines'])} skipped; rebuild the store from these labels")
    test = set(meta["subjects"].get("test", []))
    seen = set(meta["subjects"].get("train", [])) | set(meta["subjects"].get("val", []))
    if test & seen:
        raise DataError(f"{store.path}: subjects {sorted(test & seen)} are in the test split and in training")
    fraction = meta["preprocess"].get("val_fraction", 0.0)
    if fraction > 0 and not meta["n_faithful"].get("val"):
        n = len(meta["subjects"].get("train", []))
        raise DataError(f"{store.path}: no validation window: {n} training subject(s) at val_fraction {fraction:g} move "
                        f"none to validation, and every later notebook selects its models on validation; give the "
                        f"corpus at least {math.ceil(1 / fraction)} training subjects")


def _usable_events(spec: RecordingSpec, duration: float, n_classes: int, config: PreprocessConfig,
                   errors: str, skipped_lines: list) -> list:
    if spec.whole_file_label is not None:  # tile the file with non-overlapping windows

        span = config.event_seconds + 2 * config.pad_seconds
        starts = np.arange(config.pad_seconds, duration - config.event_seconds - config.pad_seconds + 1e-9, span)
        return [EventLine(-1, float(s), float(s + config.event_seconds), spec.whole_file_label) for s in starts]
    usable = []
    for event in spec.events:
        reason = check_event(event, duration, n_classes, spec.label_source or str(spec.path))
        if reason is None and abs((event.end - event.start) - config.event_seconds) > 1e-6:
            reason = (f"{spec.label_source}:{event.line}: event lasts {event.end - event.start:g} s, "
                      f"expected {config.event_seconds:g} s")
        if reason is None:
            usable.append(event)
        elif errors == "raise":
            raise DataError(reason)
        else:
            skipped_lines.append({"file": str(spec.path), "reason": reason})
    return usable
