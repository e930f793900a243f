"""Where and how a notebook runs: seeding, the torch device, progress bars (widgets, plain text
or off), the processor's name, the scale banner and glibc's memory setting."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Iterable

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


def limit_threads(n: int) -> None:
    """``n`` > 0: torch and the BLAS under numpy and scikit-learn use ``n`` threads from now on (small
    models gain nothing from more); 0 leaves every default (torch: one thread per core)."""
    import torch
    from threadpoolctl import threadpool_limits

    if n > 0:
        torch.set_num_threads(n)
        threadpool_limits(n)
