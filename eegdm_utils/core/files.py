"""Files of a run folder: paths under it, atomic writes (no reader ever sees half a file), JSON
that numpy and torch values survive, metrics files merged by key, and arrays kept on disk beside
the settings that made them."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def run_path(run_dir: str | os.PathLike, *parts: str, mkdir: bool = True) -> Path:
    """A path under ``run_dir``; its parent folder is created."""
    path = Path(run_dir).joinpath(*parts)
    if mkdir:
        (path if not path.suffix else path.parent).mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename, so no reader sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths and tuples into plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n").encode())


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def stored_array(path: str | os.PathLike, settings: dict, compute) -> np.ndarray:
    """``compute()``'s array, kept at ``path`` (.npy) with the settings that made it beside it (same
    name, .json): the first call computes and writes both (atomically), later calls with equal
    ``settings`` read the array back, other settings compute and rewrite it."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    wanted = to_jsonable(settings)
    if path.exists() and meta_path.exists() and read_json(meta_path) == json.loads(json.dumps(wanted)):
        return np.load(path)
    array = np.asarray(compute())
    meta_path.unlink(missing_ok=True)  # no moment where old settings describe a new array
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write_bytes(path, buffer.getvalue())
    atomic_write_json(meta_path, wanted)
    return array


def write_metrics(run_dir: str | os.PathLike, metrics: dict, name: str = "metrics.json") -> Path:
    """Merge ``metrics`` into ``run_dir/<name>`` (atomically) and return its path."""
    path = run_path(run_dir, name)
    current = read_json(path) if path.exists() else {}
    current.update(to_jsonable(metrics))
    atomic_write_json(path, current)
    return path


def fresh_folder(path: str | os.PathLike) -> Path:
    """``path`` with whatever it held removed (it is created by whoever writes there): what is written
    there next belongs to one run only, never mixed with the checkpoints of an earlier one."""
    shutil.rmtree(path, ignore_errors=True)
    return Path(path)
