"""Run-time helpers shared by every notebook: seeding, progress bars, run folders,
atomic writes, metrics files and figure saving."""

from __future__ import annotations

import io
import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) from one integer."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def cpu_model() -> str:
    """The processor's model name (Linux's /proc/cpuinfo; elsewhere what the platform says): every time
    the project reports comes with it."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown processor"


def torch_device(accelerator: str = "auto"):
    """The torch device for a notebook's ``accelerator`` parameter (Lightning's names): "auto"
    (a CUDA GPU when there is one, else the CPU), "cpu", "gpu"/"cuda" or "cuda:<i>", "mps"."""
    import torch

    name = str(accelerator).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "gpu" or name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"accelerator {accelerator!r}: torch sees no CUDA GPU on this machine (use 'cpu' or 'auto')")
        return torch.device("cuda" if name == "gpu" else name)
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise RuntimeError("accelerator 'mps': not available on this machine (use 'cpu' or 'auto')")
        return torch.device("mps")
    raise ValueError(f"accelerator {accelerator!r}: expected 'auto', 'cpu', 'gpu', 'cuda[:i]' or 'mps'")


def progress_enabled() -> bool:
    """Progress bars are on unless ``EEGDM_PROGRESS=0`` (set by ``make test`` and CI)."""
    return os.environ.get("EEGDM_PROGRESS", "1").strip().lower() not in ("0", "false", "no", "off")


def text_progress() -> bool:
    """``EEGDM_PROGRESS=text``: progress bars as plain text on stderr (set by ``tools/run.py`` when a
    terminal is attached, so that they stream from the notebooks papermill runs)."""
    return os.environ.get("EEGDM_PROGRESS", "").strip().lower() == "text"


def progress(iterable: Iterable | None = None, **kwargs):
    """A progress bar that stays quiet when progress is disabled: ``tqdm.auto``'s (a widget in
    JupyterLab), or with ``EEGDM_PROGRESS=text`` plain text on stderr at most every 10 s, which
    ``tools/run.py`` streams to the terminal while papermill runs the notebook."""
    if text_progress():
        import sys

        from tqdm import tqdm as text_tqdm

        return text_tqdm(iterable, file=sys.stderr, mininterval=10.0, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not progress_enabled(), **kwargs)


SCALES = {
    "smoke": "the smoke scale (this notebook's defaults, a minute or two): a check that everything runs, "
             "not a result; the committed outputs are this scale",
    "demo": "the demo scale (params/demo.yaml, `make demo`): a first result in about ten minutes",
    "default": "the default scale (params/default.yaml, `make run`): the numbers of RESULTS.md",
    "full": "the default scale with every seed and sweep (`make full`)",
    "paper": "the paper's scale (params/paper.yaml; meant for a GPU)",
}


def scale_banner(run_dir: str | os.PathLike) -> str:
    """One line saying at which scale this run's outputs are made, from the run folder's name
    (runs/smoke, runs/default, runs/paper; any other folder is the user's own settings)."""
    name = Path(run_dir).resolve().name
    scale = SCALES.get(name, "your own settings (see the parameters cell)")
    return f"run folder {name}/: {scale}"


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


FIGURE_FORMATS = ("png", "pdf", "svg", "jpg")
_figure_output = {"formats": ("png",), "dpi": 110}


def set_figure_output(formats=("png",), dpi: int = 110) -> None:
    """What :func:`save_figure` writes from now on: one file per format (``png`` for the
    notebooks and the README, ``pdf``/``svg`` for a paper) at ``dpi`` (raster formats; 300 for
    print). Set by :func:`eegdm_utils.figures.style` from each notebook's ``figure_formats`` and
    ``figure_dpi`` parameters."""
    formats = tuple(str(f).lower().lstrip(".") for f in ([formats] if isinstance(formats, str) else formats))
    unknown = [f for f in formats if f not in FIGURE_FORMATS]
    if not formats or unknown:
        raise ValueError(f"figure_formats {list(formats)}: each must be one of {list(FIGURE_FORMATS)}")
    if int(dpi) < 1:
        raise ValueError(f"figure_dpi {dpi}: must be a positive number of dots per inch")
    _figure_output.update(formats=formats, dpi=int(dpi))


FIGURE_MAX_WIDTH = 7.0  # inches: a two-column page's full width, or a slide


def fit_width(fig, max_width: float = FIGURE_MAX_WIDTH) -> float:
    """Narrow ``fig`` until what ``savefig(bbox_inches="tight")`` writes (the tight bounding box,
    labels that overhang the canvas included, plus the padding on both sides) is at most
    ``max_width`` inches wide; the height stays. Returns the saved width."""
    import matplotlib

    pad = 2 * float(matplotlib.rcParams["savefig.pad_inches"])
    # text measured at the screen dpi comes out a little wider at the saving dpi: keep a margin
    saved = lambda: fig.get_tightbbox(fig.canvas.get_renderer()).width + pad + 0.1  # inches
    width = saved()
    if width <= max_width:
        return width
    # labels that overhang the canvas overhang more as it narrows: bisect the canvas width
    width, height = (float(v) for v in fig.get_size_inches())  # the canvas, no longer the saved area
    narrow, wide = 0.0, width
    for _ in range(14):
        fig.set_size_inches((narrow + wide) / 2, height)
        if saved() <= max_width:
            narrow = (narrow + wide) / 2
        else:
            wide = (narrow + wide) / 2
    # a title or legend wider than the limit on its own cannot be fitted by narrowing: keep the figure
    fig.set_size_inches(narrow if narrow > 0.5 * width else width, height)
    return saved()


def save_figure(fig, name: str, figures_dir: str | os.PathLike, dpi: int | None = None) -> Path:
    """Save ``fig`` as ``figures_dir/<name>.<format>`` for each format of
    :func:`set_figure_output` (PNG at 110 dpi unless set), at most :data:`FIGURE_MAX_WIDTH` inches
    wide (:func:`fit_width`); the one helper every notebook uses. Each file is written whole or not
    at all. Returns the path of the first format."""
    fit_width(fig)
    paths = []
    for fmt in _figure_output["formats"]:
        out = Path(figures_dir) / f"{name}.{fmt}"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp.{fmt}")
        metadata = {"svg": {"Creator": None, "Date": None}, "jpg": None,  # no tool or date stamps: same figure, same bytes
                    "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}.get(fmt, {"Software": None})
        fig.savefig(tmp, dpi=dpi or _figure_output["dpi"], bbox_inches="tight",
                    **({} if metadata is None else {"metadata": metadata}))
        os.replace(tmp, out)
        paths.append(out)
    return paths[0]


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameters, glibc's malloc.h


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory for reuse instead of handing it back to the OS.

    A training step frees and re-allocates the same large activations (tens of MB each,
    gigabytes in all at batch 32 in the paper configuration) every step. By default glibc
    serves blocks of 32 MB and more with a fresh ``mmap`` and unmaps them when freed, and
    trims the free top of the heap, so every step pays the page faults of touching new
    memory again: on the 2-core development machine that was about a third of a
    paper-configuration step on CPU (benchmarks/README.md). With mmap off and no trimming,
    the memory is reused; the process keeps its peak footprint instead of shrinking
    between steps.

    Process-wide; the same as starting Python with ``MALLOC_MMAP_MAX_=0`` and a
    ``MALLOC_TRIM_THRESHOLD_`` larger than the heap. Returns False (and changes nothing)
    where the C library is not glibc (macOS, Windows, musl).
    """
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL("libc.so.6")
    # glibc stores the threshold unsigned: -1 is "never trim"
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, -1))
