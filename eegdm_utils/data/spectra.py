"""Spectral summaries of EEG windows: Welch power spectra and band powers.

Shape letters: N windows, K channels, L samples, F frequencies.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import welch

BANDS = {"delta": (1.0, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0)}


def psd(x: np.ndarray, sfreq: float, nperseg: int = 256, fmax: float | None = 75.0) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density over the last axis: ([F], [..., F])."""
    freqs, p = welch(np.asarray(x, dtype=np.float64), fs=sfreq, nperseg=min(nperseg, np.shape(x)[-1]), axis=-1)
    if fmax is not None:
        keep = freqs <= fmax
        freqs, p = freqs[keep], p[..., keep]
    return freqs, p


def log_psd(x: np.ndarray, sfreq: float, nperseg: int = 256, fmax: float | None = 75.0, floor: float = 1e-12):
    freqs, p = psd(x, sfreq, nperseg, fmax)
    return freqs, np.log10(p + floor)


def band_powers(x: np.ndarray, sfreq: float, bands: dict = BANDS, nperseg: int = 256) -> dict[str, np.ndarray]:
    """Relative band power (share of 1-30 Hz power) per band, shape [...]."""
    freqs, p = psd(x, sfreq, nperseg, fmax=None)
    total_mask = (freqs >= 1.0) & (freqs < 30.0)
    total = p[..., total_mask].sum(-1) + 1e-20
    return {name: p[..., (freqs >= lo) & (freqs < hi)].sum(-1) / total for name, (lo, hi) in bands.items()}
