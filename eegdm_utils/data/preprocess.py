"""Preprocessing as in the EEGDM reference (itself BIOT's TUEV script):

MNE band-pass 0.1-75 Hz, notch (50 Hz in the reference; 60 Hz for US recordings),
resample to 200 Hz, the TCP bipolar montage (22 channels, reference order), x1e4
(volts -> units of 100 uV), the signal tiled 3 times end to end, and each event
[start, end] cut as the window [start - 2 s, end + 2 s] (1000 samples for 1-s events).

Shape letters: J recorded channels, K TCP channels (22), T samples, L window length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .edf import EDFError, read_edf
from .montage import N_TCP, TCP_NAMES, derive_tcp
from .recordings import DataError


@dataclass
class PreprocessConfig:
    l_freq: float = 0.1
    h_freq: float = 75.0
    notch_freq: float | None = 50.0  # the reference's value; 60.0 for US recordings (TUH, simulated)
    sfreq: int = 200
    scale: float = 1.0e4  # volts -> 100 uV units
    pad_seconds: float = 2.0  # the window is the event +- pad
    event_seconds: float = 1.0
    tile: int = 3
    min_sfreq: float = 150.0  # below this, a 75 Hz low-pass and 200 Hz resampling are meaningless
    min_channels: int = 16  # fewer derivable TCP channels than this: the recording is not used
    flat_uv: float = 0.05  # a channel whose standard deviation is below this (uV) is flat
    val_fraction: float = 0.2
    split_seed: int = 4523

    @property
    def window_samples(self) -> int:
        return int(round((self.event_seconds + 2 * self.pad_seconds) * self.sfreq))


@dataclass
class TCPRecording:
    """A preprocessed recording: ``data`` [K, T] in 100 uV units, NaN rows for missing
    channels, ``present`` [K]."""

    path: Path
    data: np.ndarray
    present: np.ndarray
    sfreq: float
    source_sfreq: float
    dropped: dict[str, str] = field(default_factory=dict)  # recorded channel -> why (flat, NaN)

    @property
    def duration(self) -> float:
        return self.data.shape[1] / self.sfreq


def load_tcp(path: str | Path, config: PreprocessConfig) -> TCPRecording:
    """Read one EDF and return its preprocessed TCP montage.

    Raises :class:`EDFError` (unreadable file) or :class:`DataError` (too low a sampling
    rate, too few derivable channels), each naming the file and the reason.
    """
    path = Path(path)
    raw = read_edf(path)
    return tcp_from_raw(raw, config, path)


def tcp_from_raw(raw, config: PreprocessConfig, path: str | Path = "<raw>") -> TCPRecording:
    path = Path(path)
    fs = float(raw.info["sfreq"])
    if fs < config.min_sfreq:
        raise DataError(
            f"{path}: sampling rate {fs:g} Hz is under {config.min_sfreq:g} Hz "
            f"(a {config.h_freq:g} Hz low-pass and resampling to {config.sfreq} Hz need more)"
        )
    mapping = derive_tcp(raw.ch_names)
    used = np.flatnonzero(np.abs(mapping.weights).sum(axis=0))  # recorded channels that matter
    if len(used) == 0:
        raise DataError(f"{path}: no EEG channel maps to the TCP montage (channels: {', '.join(raw.ch_names[:8])}...)")
    data = raw.get_data(picks=used)  # [J, T] volts
    dropped = {}
    finite = np.isfinite(data).all(axis=1)
    std_uv = np.nanstd(np.where(np.isfinite(data), data, np.nan), axis=1) * 1e6
    for j, ok, s in zip(used, finite, std_uv):
        if not ok:
            dropped[raw.ch_names[j]] = "NaN or infinite samples"
        elif s < config.flat_uv:
            dropped[raw.ch_names[j]] = f"flat (std {s:.3g} uV)"
    if dropped:  # derive again without the unusable channels
        keep_names = [n if n not in dropped else f"__dropped_{i}" for i, n in enumerate(raw.ch_names)]
        mapping = derive_tcp(keep_names)
        used = np.flatnonzero(np.abs(mapping.weights).sum(axis=0))
    n_present = int(mapping.present.sum())
    if n_present < config.min_channels:
        missing = ", ".join(mapping.missing)
        why = f"; unusable channels: {', '.join(f'{k} ({v})' for k, v in dropped.items())}" if dropped else ""
        raise DataError(
            f"{path}: only {n_present} of {N_TCP} TCP channels can be derived "
            f"(missing {missing}){why}; at least {config.min_channels} are needed"
        )
    import mne

    info = mne.create_info([raw.ch_names[j] for j in used], fs, "eeg", verbose="error")
    clean = mne.io.RawArray(raw.get_data(picks=used), info, verbose="error")
    clean.filter(config.l_freq, config.h_freq, n_jobs=1, verbose="error")
    if config.notch_freq:
        clean.notch_filter(config.notch_freq, n_jobs=1, verbose="error")
    clean.resample(config.sfreq, n_jobs=1, verbose="error")
    weights = mapping.weights[:, used]  # [K, J]
    tcp = weights @ clean.get_data() * config.scale  # [K, T]
    tcp[~mapping.present] = np.nan
    return TCPRecording(path, tcp.astype(np.float32), mapping.present.copy(), float(config.sfreq), fs, dropped)


def window_bounds(recording: TCPRecording, start: float, end: float, config: PreprocessConfig) -> tuple[int, int]:
    """Sample range of the window [start - pad, end + pad] in the signal tiled
    ``config.tile`` times (the middle copy holds the original), as in the reference:
    ``start``/``end`` index the first sample at or after the event times."""
    n = recording.data.shape[1]
    times = np.arange(n) / recording.sfreq
    s = int(np.searchsorted(times, start - 1e-9, side="left"))
    e = int(np.searchsorted(times, end - 1e-9, side="left"))
    pad = int(round(config.pad_seconds * recording.sfreq))
    offset = n * (config.tile // 2)
    return offset + s - pad, offset + e + pad


def cut_windows(recording: TCPRecording, intervals: list[tuple[float, float]], config: PreprocessConfig) -> np.ndarray:
    """[len(intervals), K, L] windows around each (start, end) interval."""
    tiled = np.concatenate([recording.data] * config.tile, axis=1)  # [K, tile*T]
    out = np.empty((len(intervals), N_TCP, config.window_samples), dtype=np.float32)
    for i, (start, end) in enumerate(intervals):
        a, b = window_bounds(recording, start, end, config)
        if b - a != config.window_samples:
            raise DataError(
                f"{recording.path}: event {start:g}-{end:g} s gives a window of {b - a} samples, "
                f"expected {config.window_samples} (events must last {config.event_seconds:g} s)"
            )
        out[i] = tiled[:, a:b]
    return out


__all__ = ["PreprocessConfig", "TCPRecording", "load_tcp", "tcp_from_raw", "cut_windows", "window_bounds",
           "EDFError", "DataError", "TCP_NAMES"]
