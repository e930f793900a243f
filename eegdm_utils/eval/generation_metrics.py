"""How close generated EEG is to real EEG, per channel:

- log-PSD distance: RMS difference (log10 units) between the mean Welch log-spectra, 1-70 Hz;
- band-power ratios: share of 1-30 Hz power in delta, theta, alpha and beta, mean absolute
  difference between generated and real;
- amplitude distribution: two-sample Kolmogorov-Smirnov statistic of the sample values.

The same metrics for two halves of the real windows give the floor that a perfect
generator would reach with this many samples.

Shape letters: N windows, K channels, L samples, F frequencies.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import ks_2samp

from ..data.montage import TCP_NAMES
from ..data.spectra import BANDS, band_powers, log_psd


def channel_metrics(generated: np.ndarray, real: np.ndarray, sfreq: float, max_values: int = 20000):
    """Metrics of ``generated`` [N, K, L] against ``real`` [M, K, L]: a DataFrame, one row per channel."""
    import pandas as pd

    if generated.shape[1:] != real.shape[1:]:
        raise ValueError(f"shapes differ: generated {generated.shape[1:]}, real {real.shape[1:]}")
    freqs, lp_gen = log_psd(generated, sfreq, nperseg=200, fmax=70.0)  # [N, K, F]
    _, lp_real = log_psd(real, sfreq, nperseg=200, fmax=70.0)
    keep = freqs >= 1.0
    bp_gen, bp_real = band_powers(generated, sfreq, nperseg=200), band_powers(real, sfreq, nperseg=200)
    rows = []
    for k in range(generated.shape[1]):
        if not (np.isfinite(real[:, k]).all() and np.isfinite(generated[:, k]).all()):
            continue  # a missing channel
        diff = lp_gen[:, k, keep].mean(0) - lp_real[:, k, keep].mean(0)  # [F]
        row = {"channel": TCP_NAMES[k] if generated.shape[1] == len(TCP_NAMES) else str(k),
               "log_psd_rmse": float(np.sqrt((diff**2).mean()))}
        for band in BANDS:
            row[f"{band}_diff"] = float(abs(bp_gen[band][:, k].mean() - bp_real[band][:, k].mean()))
        row["band_ratio_diff"] = float(np.mean([row[f"{b}_diff"] for b in BANDS]))
        # an even stride, not a random draw: identical inputs give identical subsamples
        a, b = generated[:, k].ravel(), real[:, k].ravel()
        a, b = a[:: -(-a.size // max_values)], b[:: -(-b.size // max_values)]
        row["amplitude_ks"] = float(ks_2samp(a, b).statistic)
        rows.append(row)
    return pd.DataFrame(rows)


SUMMARY_COLUMNS = ["log_psd_rmse", "band_ratio_diff", "amplitude_ks"]


def summary(generated: np.ndarray, real: np.ndarray, sfreq: float) -> dict[str, float]:
    """Channel means of the three metrics (lower is closer to real EEG)."""
    df = channel_metrics(generated, real, sfreq)
    return {c: float(df[c].mean()) for c in SUMMARY_COLUMNS}


def real_halves(real: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint random halves of the real windows (the noise floor of the metrics)."""
    order = np.random.default_rng(seed).permutation(len(real))
    half = len(real) // 2
    return real[order[:half]], real[order[half:2 * half]]
