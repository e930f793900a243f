"""Real EEG (notebook 95): subject-wise folds, latents held in memory, the metrics of small real
tasks, and the CHB-MIT labels builder.

Protocol: every subject is tested in exactly one fold and never trained on in that fold; the
validation subjects that select models are drawn from that fold's training subjects
(``store.build_store`` does it, as for every store). Each fold is its own store, built by
:func:`fold_specs` from the same EDF folder and label table with that fold's test subjects.

CHB-MIT: a patient folder ``chbNN/`` holds ``chbNN_MM.edf`` recordings and ``chbNN-summary.txt``
with each file's seizure times; :func:`chbmit_labels` turns a folder of such patients into the
label table notebook 10 reads (``file,start,end,label``): every seizure second, and as many
non-seizure seconds of the same patient drawn at least ``margin_seconds`` away from any seizure.

Shape letters: N windows, n layers, P pools, K channels, H width, C classes.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np

from .metrics import classification_metrics
from .recordings import DataError, RecordingSpec


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


class ArrayCache:
    """Latents held in memory, with the one method the LFT's datasets use (``latents(split)``)."""

    def __init__(self, latents: dict[str, np.ndarray]):
        self._latents = latents

    def latents(self, split: str) -> np.ndarray:
        return self._latents[split]


def split_latents(backbone, store, split: str, cache_config, scheduler, mu_law: bool) -> np.ndarray:
    """[N, n, P, K, H] latents of every window of ``split`` (NaN = missing channel), computed from the
    raw windows as notebook 30 caches them and notebook 40 tests them."""
    from .cache import window_latents

    windows, present = store.windows(split), store.present(split)
    step = cache_config.batch_windows
    chunks = [window_latents(backbone, np.asarray(windows[i:i + step]), present[i:i + step], cache_config, scheduler,
                             mu_law, index0=i) for i in range(0, len(windows), step)]
    n_layer, d = len(backbone.blocks), backbone.config.d_model
    return np.concatenate(chunks) if chunks else np.zeros((0, n_layer, 0, windows.shape[1], d), np.float32)


def task_metrics(y_true: np.ndarray, scores: np.ndarray, n_classes: int) -> dict:
    """Kappa, balanced accuracy, weighted F1 and AUROC (two classes: of the second class's logit minus
    the first's; more: macro one-vs-rest on their softmax; NaN when the test fold holds one class)
    from class logits or log-probabilities [N, C];
    ``predicted_classes``: how many classes the model predicts at all (1 = collapsed)."""
    from sklearn.metrics import roc_auc_score

    y_true, scores = np.asarray(y_true), np.asarray(scores, dtype=np.float64)
    pred = scores.argmax(axis=1)
    m = classification_metrics(y_true, pred, n_classes)
    present = np.unique(y_true)
    if len(present) < 2:
        auroc = float("nan")
    elif n_classes == 2:
        auroc = float(roc_auc_score(y_true, scores[:, 1] - scores[:, 0]))
    else:
        prob = np.exp(scores - scores.max(axis=1, keepdims=True))
        prob /= prob.sum(axis=1, keepdims=True)
        auroc = float(roc_auc_score(y_true, prob[:, present], multi_class="ovr", labels=present)) \
            if len(present) == n_classes else float("nan")
    return {**m, "auroc": auroc, "predicted_classes": int(len(np.unique(pred)))}


# ---------------------------------------------------------------- CHB-MIT

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
    from .edf import read_edf_header

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
