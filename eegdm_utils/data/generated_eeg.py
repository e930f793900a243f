"""Generated EEG as MNE objects: 22-channel TCP recordings from per-channel samples.

The sampling loops themselves are written out in notebook 70, where they are taught.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .montage import TCP_NAMES
from .mulaw import inverse_staged_mu_law

SCALE = 1.0e4  # store units per volt (100 uV units)


def to_store_units(samples: np.ndarray, mu_law: bool) -> np.ndarray:
    """Model space (mu-law companded if the model was trained so) -> 100 uV units."""
    return np.asarray(inverse_staged_mu_law(samples) if mu_law else samples)


def to_raw(recording: np.ndarray, sfreq: float = 200.0):
    """[22, L] in 100 uV units -> mne.io.RawArray (volts) with the TCP channel names."""
    import mne

    if recording.shape[0] != len(TCP_NAMES):
        raise ValueError(f"expected {len(TCP_NAMES)} TCP channels, got {recording.shape[0]}")
    info = mne.create_info(list(TCP_NAMES), sfreq, "eeg", verbose="error")
    return mne.io.RawArray(recording / SCALE, info, verbose="error")


def save_fif(recording: np.ndarray, path: str | Path, sfreq: float = 200.0) -> Path:
    """Save a generated recording as .fif (atomically: temporary name, then rename)."""
    import os

    path = Path(path)
    if not path.name.endswith("_raw.fif"):
        raise ValueError(f"{path}: MNE expects raw files to end in _raw.fif")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"tmp-{os.getpid()}-{path.name}")
    to_raw(recording, sfreq).save(tmp, overwrite=True, verbose="error")
    os.replace(tmp, path)
    return path


CHANNEL_GROUPS = {
    "left temporal": [0, 1, 2, 3],
    "right temporal": [4, 5, 6, 7],
    "central": [8, 9, 10, 11, 12, 13],
    "left parasagittal": [14, 15, 16, 17],
    "right parasagittal": [18, 19, 20, 21],
}
