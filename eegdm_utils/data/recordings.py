"""Finding recordings and their labels: a TUEV root (``edf/train``, ``edf/eval`` with
``.rec`` files) or any folder of EDF files labelled by a table or per file.

Everything here reads only names and small text files; signals are read in
:mod:`eegdm_utils.data.preprocess`.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .montage import N_TCP

# the six TUEV event classes, in the order of their labels 1..6 in .rec files and CSV tables
TUEV_CLASSES: tuple[str, ...] = ("SPSW", "GPED", "PLED", "EYEM", "ARTF", "BCKG")


class DataError(ValueError):
    """Input that cannot be used; the message names the file (and line) and the reason."""


@dataclass(frozen=True)
class EventLine:
    """One annotation: TCP channel (-1: the whole montage), start and end (s), label index."""

    channel: int
    start: float
    end: float
    label: int
    line: int = 0  # line number in its source file, for messages


@dataclass
class RecordingSpec:
    path: Path
    split: str  # train, val or test
    subject: str
    events: list[EventLine] = field(default_factory=list)
    label_source: str = ""  # the .rec or table the events came from
    whole_file_label: int | None = None  # label every window of the file


def subject_of(path: str | os.PathLike) -> str:
    """Subject id as in the reference: the file-name prefix before the first ``_``."""
    return Path(path).name.split("_")[0]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a text file (byte {e.start} is not UTF-8)") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror})") from None


def parse_rec(path: str | os.PathLike, n_classes: int = len(TUEV_CLASSES)) -> list[EventLine]:
    """Read a TUEV ``.rec`` file (``channel,start,end,label`` with labels 1..6)."""
    path = Path(path)
    events = []
    for number, text in enumerate(_read_text(path).splitlines(), start=1):
        text = text.strip()
        if not text:
            continue
        parts = text.split(",")
        if len(parts) != 4:
            raise DataError(f"{path}:{number}: expected 'channel,start,end,label', got {text!r}")
        try:
            channel, start, end, label = int(float(parts[0])), float(parts[1]), float(parts[2]), int(float(parts[3]))
        except (ValueError, OverflowError):  # OverflowError: int(inf)
            raise DataError(f"{path}:{number}: not numbers: {text!r}") from None
        events.append(EventLine(channel, start, end, label - 1, number))
    return events


def check_event(event: EventLine, duration: float, n_classes: int, source: str) -> str | None:
    """The reason an event line cannot be used, or None."""
    where = f"{source}:{event.line}" if event.line else source
    if not 0 <= event.label < n_classes:
        return f"{where}: unknown class {event.label + 1} (expected 1..{n_classes})"
    if not -1 <= event.channel < N_TCP:
        return f"{where}: channel index {event.channel} is outside 0..{N_TCP - 1}"
    if not (0 <= event.start < event.end <= duration + 1e-6):
        return f"{where}: event {event.start:g}-{event.end:g} s lies outside the recording (0-{duration:g} s)"
    return None


def collect_tuev(root: str | os.PathLike) -> list[RecordingSpec]:
    """Recordings of a TUEV v2.0.1 root (or the simulated corpus): ``edf/train`` is
    training data, ``edf/eval`` the test set. Each EDF needs its ``.rec`` beside it."""
    root = Path(root)
    specs = []
    for folder, split in (("train", "train"), ("eval", "test")):
        base = root / "edf" / folder
        if not base.is_dir():
            raise DataError(f"{root}: not a TUEV root (no folder edf/{folder})")
        for edf in sorted(base.rglob("*.edf")):
            rec = edf.with_suffix(".rec")
            if not rec.exists():
                raise DataError(f"{edf}: no .rec file beside it ({rec.name})")
            specs.append(RecordingSpec(edf, split, subject_of(edf), parse_rec(rec), str(rec)))
    if not specs:
        raise DataError(f"{root}: no EDF files under edf/train or edf/eval")
    return specs


def read_label_table(path: str | os.PathLike) -> tuple[dict[str, list[tuple[float, float, str, int]]], dict[str, str]]:
    """A CSV table of labels. Columns ``file,start,end,label`` give events; columns
    ``file,label`` label whole files. ``file`` is a path relative to the EDF folder or a
    glob pattern (``*_2.edf``). Returns (events by file pattern, whole-file labels)."""
    path = Path(path)
    events: dict[str, list] = {}
    whole: dict[str, str] = {}
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    try:
        columns = set(reader.fieldnames or [])
        if not {"file", "label"} <= columns:
            raise DataError(f"{path}: a label table needs the columns file,label (and optionally start,end); has {sorted(columns)}")
        timed = {"start", "end"} <= columns
        for row in reader:
            number = reader.line_num
            file, label = (row["file"] or "").strip(), (row["label"] or "").strip()
            if not file:
                raise DataError(f"{path}:{number}: no file name")
            if not label:
                raise DataError(f"{path}:{number}: empty label")
            if timed and (row.get("start") or "").strip():
                try:
                    start, end = float(row["start"]), float(row["end"] or "")
                except ValueError:
                    raise DataError(f"{path}:{number}: start/end are not numbers") from None
                if not -float("inf") < start < end < float("inf"):  # also NaN
                    raise DataError(f"{path}:{number}: start {start:g} s is not before end {end:g} s "
                                    "(or not a finite time)")
                events.setdefault(file, []).append((start, end, label, number))
            else:
                whole[file] = label
    except csv.Error as e:
        raise DataError(f"{path}:{reader.line_num}: not a CSV table ({e})") from None
    return events, whole


def _match(pattern_map: dict, relative: str):
    for pattern, value in pattern_map.items():
        if relative == pattern or fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(Path(relative).name, pattern):
            return value
    return None


def collect_edf_folder(
    root: str | os.PathLike,
    labels: str | os.PathLike | dict[str, str],
    test_subjects: list[str] | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 4523,
    event_seconds: float = 1.0,
) -> tuple[list[RecordingSpec], list[str]]:
    """Recordings of any EDF folder. ``labels``: a CSV table (see :func:`read_label_table`)
    or a dict {file pattern: label}. Files without a label are not used. Test subjects are
    ``test_subjects`` or a seeded ``test_fraction`` of subjects. Timed rows longer than
    ``event_seconds`` are split into consecutive events of that length (TUEV's 1-s
    convention). Returns the specs and the class names (sorted)."""
    root = Path(root)
    if isinstance(labels, dict):
        timed, whole = {}, dict(labels)
        source = "labels"
    else:
        timed, whole = read_label_table(labels)
        source = str(labels)
    files = sorted(root.rglob("*.edf")) + sorted(root.rglob("*.EDF"))
    if not files:
        raise DataError(f"{root}: no EDF files")
    class_names = sorted({lab for rows in timed.values() for _, _, lab, _ in rows} | set(whole.values()))
    index = {c: i for i, c in enumerate(class_names)}
    specs = []
    for edf in files:
        rel = str(edf.relative_to(root))
        rows = _match(timed, rel)
        label = _match(whole, rel)
        if rows is None and label is None:
            continue
        spec = RecordingSpec(edf, "train", subject_of(edf), label_source=source)
        if rows is not None:
            for start, end, lab, number in rows:
                n = max(1, int(round((end - start) / event_seconds)))
                for i in range(n):
                    s = start + i * event_seconds
                    spec.events.append(EventLine(-1, s, s + event_seconds, index[lab], number))
        else:
            spec.whole_file_label = index[label]
        specs.append(spec)
    relatives = [str(edf.relative_to(root)) for edf in files]
    unmatched = [p for p in list(timed) + list(whole) if not any(_match({p: True}, rel) for rel in relatives)]
    if unmatched:
        raise DataError(f"{source}: names files that are not in {root}: {', '.join(sorted(unmatched)[:5])}"
                        + (f" and {len(unmatched) - 5} more" if len(unmatched) > 5 else ""))
    if not specs:
        raise DataError(f"{root}: none of the EDF files has a label in {source}")
    subjects = sorted({s.subject for s in specs})
    if test_subjects is None:
        rng = np.random.RandomState(split_seed)
        n_test = max(1, int(round(len(subjects) * test_fraction)))
        test_subjects = list(rng.choice(subjects, size=n_test, replace=False))
    unknown = set(test_subjects) - set(subjects)
    if unknown:
        raise DataError(f"{root}: test subjects {sorted(unknown)} have no labelled recordings")
    for spec in specs:
        if spec.subject in test_subjects:
            spec.split = "test"
    return specs, class_names


def choose_validation(subjects, fraction: float = 0.2, seed: int = 4523) -> list[str]:
    """The reference's rule for the validation subjects: ``fraction`` of the sorted ``subjects`` drawn
    with ``np.random.seed(seed)``'s ``choice`` without replacement (sorted first, since the reference's
    ``set`` order is not reproducible across runs)."""
    subjects = sorted(set(subjects))
    n_val = int(len(subjects) * fraction)
    return sorted(np.random.RandomState(seed).choice(subjects, size=n_val, replace=False).tolist()) if n_val else []


def assign_validation(specs: list[RecordingSpec], fraction: float = 0.2, seed: int = 4523) -> list[str]:
    """Move ``fraction`` of the training subjects to validation, as the reference does
    (:func:`choose_validation`)."""
    val = choose_validation([s.subject for s in specs if s.split == "train"], fraction, seed)
    for spec in specs:
        if spec.split == "train" and spec.subject in val:
            spec.split = "val"
    return val
