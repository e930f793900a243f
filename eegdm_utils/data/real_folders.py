"""Real EEG folders (notebook 95): subject-wise folds, stores for a fold, splits in time for
a one-patient folder, and the CHB-MIT labels builder.

Protocol: every subject is tested in exactly one fold and never trained on in that fold; the
validation subjects that select models are drawn from that fold's training subjects
(``store.build_store`` does it, as for every store). Each fold is its own store, built by
:func:`fold_specs` from the same EDF folder and label table with that fold's test subjects.

CHB-MIT: a patient folder ``chbNN/`` holds ``chbNN_MM.edf`` recordings and ``chbNN-summary.txt``
with each file's seizure times; :func:`chbmit_labels` turns a folder of such patients into the
label table notebook 10 reads (``file,start,end,label``): every seizure second, and as many
non-seizure seconds of the same patient drawn at least ``margin_seconds`` away from any seizure."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np

from .edf import read_edf_header
from .recordings import DataError, RecordingSpec, subject_of
from .store import StoreMeta


def subject_folds(subjects, k: int, seed: int = 0) -> list[list[str]]:
    """``k`` disjoint groups of test subjects covering every subject once (sizes differ by at most
    one); subjects are sorted, then shuffled with ``seed``."""
    subjects = sorted(set(subjects))
    if not 2 <= k <= len(subjects):
        raise ValueError(f"{k} folds need 2 to {len(subjects)} subjects per fold count; there are {len(subjects)} "
                         f"subjects ({', '.join(subjects)})")
    order = np.random.default_rng(seed).permutation(len(subjects))
    return [sorted(subjects[i] for i in order[f::k]) for f in range(k)]


def fold_specs(specs: list[RecordingSpec], test_subjects) -> list[RecordingSpec]:
    """Copies of ``specs`` with ``test_subjects`` in the test split and everyone else in training
    (the store then moves some training subjects to validation)."""
    test_subjects = set(test_subjects)
    unknown = test_subjects - {s.subject for s in specs}
    if unknown:
        raise DataError(f"test subjects {sorted(unknown)} have no labelled recordings")
    return [RecordingSpec(s.path, "test" if s.subject in test_subjects else "train", s.subject, list(s.events),
                          s.label_source, s.whole_file_label) for s in specs]


_FILE = re.compile(r"^File Name:\s*(\S+)\s*$")


_START = re.compile(r"^Seizure(?:\s+\d+)?\s+Start Time:\s*([\d.]+)\s*seconds?\s*$")


_END = re.compile(r"^Seizure(?:\s+\d+)?\s+End Time:\s*([\d.]+)\s*seconds?\s*$")


def parse_chbmit_summary(path: str | os.PathLike) -> dict[str, list[tuple[float, float]]]:
    """{file name: [(seizure start, end) in s]} for every file a ``chbNN-summary.txt`` lists (both
    spellings: ``Seizure Start Time:`` and ``Seizure 1 Start Time:``)."""
    path = Path(path)
    files: dict[str, list[tuple[float, float]]] = {}
    current, start = None, None
    for number, text in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        text = text.strip()
        if (m := _FILE.match(text)):
            current, start = m.group(1), None
            files.setdefault(current, [])
        elif (m := _START.match(text)):
            if current is None:
                raise DataError(f"{path}:{number}: a seizure start before any 'File Name:' line")
            start = float(m.group(1))
        elif (m := _END.match(text)):
            if current is None or start is None:
                raise DataError(f"{path}:{number}: a seizure end without its start")
            end = float(m.group(1))
            if end <= start:
                raise DataError(f"{path}:{number}: seizure ends at {end:g} s, before its start {start:g} s")
            files[current].append((start, end))
            start = None
    if start is not None:
        raise DataError(f"{path}: the last seizure start has no end")
    if not files:
        raise DataError(f"{path}: no 'File Name:' lines; not a CHB-MIT summary file")
    return files


def chbmit_labels(root: str | os.PathLike, out_csv: str | os.PathLike, background_ratio: float = 1.0,
                  margin_seconds: float = 60.0, seed: int = 0) -> dict:
    """Write the label table (``file,start,end,label``; files relative to ``root``) of a CHB-MIT
    folder: every ``chbNN/chbNN-summary.txt`` under ``root``, each seizure as one ``seizure`` row
    and, per seizure, ``background_ratio`` times as many ``non-seizure`` seconds of the same patient,
    drawn (seeded) from its files at least ``margin_seconds`` from any seizure. A file the summary
    names that is not on disk is an error naming the summary. Returns counts per patient."""

    root = Path(root)
    summaries = sorted(root.rglob("*-summary.txt"))
    if not summaries:
        raise DataError(f"{root}: no chbNN-summary.txt files (the CHB-MIT layout is chbNN/chbNN_MM.edf + chbNN-summary.txt)")
    rng = np.random.default_rng(seed)
    rows, counts = [], {}
    for summary in summaries:
        seizures = parse_chbmit_summary(summary)
        durations = {}
        for name in seizures:
            edf = summary.parent / name
            if not edf.exists():
                raise DataError(f"{summary}: lists {name}, which is not in {summary.parent}")
            header = read_edf_header(edf)
            durations[name] = header.n_records * header.record_seconds
        patient = summary.parent.name
        n_seizure = n_background = 0.0
        for name, spans in seizures.items():
            for start, end in spans:
                if end > durations[name] + 1e-6:
                    raise DataError(f"{summary}: {name}'s seizure ends at {end:g} s, after the file's end "
                                    f"({durations[name]:g} s)")
                rows.append((summary.parent / name, start, end, "seizure"))
                n_seizure += end - start
        # background: segments as long as each seizure, away from every seizure of their file
        for length in [int(round(e - s)) for spans in seizures.values() for s, e in spans]:
            need = background_ratio * length
            for _ in range(1000):
                if need <= 0:
                    break
                name = sorted(durations)[rng.integers(len(durations))]
                seg = min(length, need)
                latest = durations[name] - seg
                if latest < 0:
                    continue
                start = float(np.floor(rng.uniform(0, latest)))
                if any(start < e + margin_seconds and start + seg > s - margin_seconds for s, e in seizures[name]):
                    continue
                if any(r[0] == summary.parent / name and start < r[2] and start + seg > r[1] for r in rows):
                    continue  # no second drawn twice
                rows.append((summary.parent / name, start, start + seg, "non-seizure"))
                n_background += seg
                need -= seg
        counts[patient] = {"seizure_seconds": n_seizure, "non_seizure_seconds": n_background,
                           "files": len(seizures)}
    out_csv = Path(out_csv)
    tmp = out_csv.with_name(f".{out_csv.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "start", "end", "label"])
        for path, start, end, label in rows:
            writer.writerow([path.relative_to(root).as_posix(), f"{start:g}", f"{end:g}", label])
    os.replace(tmp, out_csv)
    return counts


def window_subjects(store, split: str = "train") -> np.ndarray:
    """[N] the subject of every window of ``split`` (the file-name prefix before ``_``)."""

    files = store.meta["files"]
    return np.array([subject_of(files[i]) for i in store.array(split, "window_file")])


def subject_split(subjects: np.ndarray, test_subjects, val_fraction: float = 0.2, seed: int = 4523) -> dict:
    """{train, val, test: window indices}: the windows of ``test_subjects`` are the test split; a
    seeded ``val_fraction`` of the other subjects (at least one when two or more remain) is the
    validation split; no subject is in two splits."""
    test_subjects = set(test_subjects)
    unknown = test_subjects - set(subjects.tolist())
    if unknown:
        raise DataError(f"test subjects {sorted(unknown)} have no windows in the store")
    rest = sorted(set(subjects.tolist()) - test_subjects)
    if not rest:
        raise DataError("every subject is a test subject; nothing is left to train on")
    n_val = max(1, int(len(rest) * val_fraction)) if len(rest) >= 2 else 0
    val = set(np.random.RandomState(seed).choice(rest, size=n_val, replace=False).tolist()) if n_val else set()
    return {"train": np.flatnonzero(~np.isin(subjects, list(test_subjects | val))),
            "val": np.flatnonzero(np.isin(subjects, list(val))),
            "test": np.flatnonzero(np.isin(subjects, list(test_subjects)))}


def time_split(window_file: np.ndarray, window_start: np.ndarray, k: int, fold: int, window_seconds: float) -> dict:
    """{train, val, test: window indices} for one patient's recordings split in time: each file's
    windows fall in ``k`` consecutive blocks by start time; block ``fold`` is the test split, the
    next block the validation split, the rest training. No two splits share a sample: a validation
    window that overlaps a test window (starts closer than ``window_seconds``) is left out, and so is
    a training window that overlaps a test or validation window, so a guard of at least one window
    separates the blocks."""
    if not 3 <= k:
        raise ValueError(f"a time split needs at least 3 blocks (test, validation, training), not {k}")
    block = np.zeros(len(window_file), dtype=int)
    for f in np.unique(window_file):
        idx = np.flatnonzero(window_file == f)
        order = idx[np.argsort(window_start[idx], kind="stable")]
        block[order] = np.arange(len(order)) * k // len(order)
    test, val = block == fold % k, block == (fold + 1) % k
    train = ~(test | val)

    def overlaps(i: int, others: np.ndarray) -> bool:
        return bool((others & (window_file == window_file[i]) & (np.abs(window_start - window_start[i]) < window_seconds)).any())

    for i in np.flatnonzero(val):
        val[i] = not overlaps(i, test)
    held = test | (block == (fold + 1) % k)  # the guard windows left out of validation stay out of training
    for i in np.flatnonzero(train):
        train[i] = not overlaps(i, held)
    return {"train": np.flatnonzero(train), "val": np.flatnonzero(val), "test": np.flatnonzero(test)}


class FoldView(StoreMeta):
    """One fold of a store whose windows are all in one split: the windows ``splits`` names
    ({train, val, test: indices}) presented with the store's read interface (windows, present,
    faithful lines, meta), so that pretraining, caches and classifiers run on it unchanged."""

    def __init__(self, store, splits: dict[str, np.ndarray], source_split: str = "train"):
        self.path = store.path
        windows, present = store.windows(source_split), store.present(source_split)
        lines = store.faithful(source_split)
        self._windows, self._present, self._lines = {}, {}, {}
        meta = {k: v for k, v in store.meta.items() if k not in ("shapes", "n_faithful", "n_pretrain", "class_counts")}
        meta.update(shapes={}, n_faithful={}, n_pretrain={}, class_counts={})
        names = list(store.class_names)
        for split in ("train", "val", "test"):
            idx = np.sort(np.asarray(splits.get(split, []), dtype=np.int64))
            self._windows[split] = np.asarray(windows[idx], dtype=np.float32)
            self._present[split] = np.asarray(present[idx], dtype=bool)
            position = np.full(len(present), -1)
            position[idx] = np.arange(len(idx))
            keep = position[lines["window"]] >= 0
            self._lines[split] = {"window": position[lines["window"][keep]], "channel": lines["channel"][keep],
                                  "label": lines["label"][keep]}
            meta["shapes"][split] = list(self._windows[split].shape)
            meta["n_faithful"][split] = int(keep.sum())
            meta["n_pretrain"][split] = int(self._present[split].sum())
            counts = np.bincount(self._lines[split]["label"].astype(np.int64), minlength=len(names))
            meta["class_counts"][split] = {c: int(n) for c, n in zip(names, counts)}
        self.meta = meta

    def windows(self, split: str) -> np.ndarray:
        return self._windows[split]

    def present(self, split: str) -> np.ndarray:
        return self._present[split]

    def faithful(self, split: str) -> dict[str, np.ndarray]:
        return dict(self._lines[split])


def make_folds(store, split_by: str, n_folds: int, fold_seed: int, test_subjects, val_fraction: float,
               split_seed: int, window_seconds: float) -> tuple[list[dict], str]:
    """The evaluation splits of a store's windows and a sentence naming the protocol: one split with
    ``test_subjects``; else ``n_folds`` subject-wise folds (subjects dealt with ``fold_seed``; validation
    subjects from each fold's training subjects); or, with ``split_by="time"``, ``n_folds`` blocks of
    each recording (:func:`time_split`)."""
    window_subject = window_subjects(store)
    subjects = sorted(set(window_subject.tolist()))
    if test_subjects:
        return ([subject_split(window_subject, test_subjects, val_fraction, split_seed)],
                "one split, test subjects " + ", ".join(test_subjects))
    if split_by == "subject":
        return ([subject_split(window_subject, group, val_fraction, split_seed + f)
                 for f, group in enumerate(subject_folds(subjects, n_folds, fold_seed))], f"{n_folds}-fold subject-wise")
    if split_by != "time":
        raise ValueError(f"split_by must be 'subject' or 'time', not {split_by!r}")
    window_file, window_start = store.array("train", "window_file"), store.array("train", "window_start")
    return ([time_split(window_file, window_start, n_folds, f, window_seconds) for f in range(n_folds)],
            f"{n_folds} time blocks per recording ({len(subjects)} subject{'s' if len(subjects) > 1 else ''})")
