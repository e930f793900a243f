"""Reading and writing EDF files.

The writer produces plain EDF (as the TUH corpus ships) deterministically: the same
array gives byte-identical files. The reader checks the header against the file size
before MNE reads it, so a truncated or corrupt file gives an error that names the file
and the reason instead of a stack trace or silently short data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.files import atomic_write_bytes


class EDFError(ValueError):
    """An EDF file that cannot be used; the message names the file and the reason."""


def _field(text: str, width: int) -> bytes:
    data = text.encode("ascii", "replace")[:width]
    return data + b" " * (width - len(data))


def _number(value: float, width: int = 8) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    if len(text) > width:
        text = f"{value:.{max(0, width - 1 - len(str(int(abs(value)))) - (value < 0))}f}"[:width]
    return text


def write_edf(
    path: str | os.PathLike,
    data_uv: np.ndarray,
    sfreq: int,
    channel_names: list[str] | tuple[str, ...],
    physical_range_uv: float = 3200.0,
    patient: str = "X X X X",
    recording: str = "Startdate 01-JAN-2001 X X X",
) -> None:
    """Write ``data_uv`` [C, T] (microvolts) as a plain EDF file of 1-second records.

    Values beyond +-``physical_range_uv`` are clipped (as an amplifier would). The start
    date is fixed so the file depends on the data alone. Written atomically.
    """
    data_uv = np.asarray(data_uv, dtype=np.float64)
    n_ch, n_samples = data_uv.shape
    if n_ch != len(channel_names):
        raise ValueError(f"{path}: {n_ch} signals but {len(channel_names)} channel names")
    if int(sfreq) != sfreq or n_samples % int(sfreq):
        raise ValueError(f"{path}: length {n_samples} is not a whole number of 1-s records at {sfreq} Hz")
    sfreq = int(sfreq)
    n_records = n_samples // sfreq
    dmin, dmax = -32768, 32767
    # encode with the physical range as the header states it (8 characters), so that a reader
    # decodes within half a quantisation step
    pmin, pmax = float(_number(-physical_range_uv)), float(_number(physical_range_uv))
    if not physical_range_uv > 0 or max(abs(pmax - physical_range_uv), abs(pmin + physical_range_uv)) > 1e-3 * physical_range_uv:
        raise ValueError(f"{path}: physical range +-{physical_range_uv} uV cannot be written in the 8 characters "
                         "of an EDF header")
    gain = (pmax - pmin) / (dmax - dmin)
    digital = np.round((np.clip(data_uv, pmin, pmax) - pmin) / gain + dmin)
    digital = np.clip(digital, dmin, dmax).astype("<i2")

    header = b"".join([
        _field("0", 8), _field(patient, 80), _field(recording, 80),
        _field("01.01.01", 8), _field("00.00.00", 8),
        _field(str(256 * (n_ch + 1)), 8), _field("", 44),
        _field(str(n_records), 8), _field("1", 8), _field(str(n_ch), 4),
    ])
    per_signal = [
        [_field(name, 16) for name in channel_names],
        [_field("", 80)] * n_ch,  # transducer
        [_field("uV", 8)] * n_ch,
        [_field(_number(pmin), 8)] * n_ch,
        [_field(_number(pmax), 8)] * n_ch,
        [_field(str(dmin), 8)] * n_ch,
        [_field(str(dmax), 8)] * n_ch,
        [_field("HP:0.1Hz LP:100Hz", 80)] * n_ch,
        [_field(str(sfreq), 8)] * n_ch,
        [_field("", 32)] * n_ch,
    ]
    header += b"".join(b"".join(column) for column in per_signal)
    # records: [n_records, C, sfreq] in file order
    body = digital.reshape(n_ch, n_records, sfreq).transpose(1, 0, 2).tobytes()
    atomic_write_bytes(path, header + body)


@dataclass(frozen=True)
class EDFHeader:
    n_records: int
    record_seconds: float
    channel_names: tuple[str, ...]
    samples_per_record: tuple[int, ...]

    @property
    def sfreqs(self) -> tuple[float, ...]:
        return tuple(n / self.record_seconds for n in self.samples_per_record)


def read_edf_header(path: str | os.PathLike) -> EDFHeader:
    """Parse and check an EDF/EDF+ header; raise :class:`EDFError` naming the reason."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            fixed = f.read(256)
            if len(fixed) < 256:
                raise EDFError(f"{path}: not an EDF file (only {size} bytes, the header alone needs 256)")

            def num(raw: bytes, what: str, kind=int):
                try:
                    return kind(raw.decode("ascii").strip())
                except (UnicodeDecodeError, ValueError):
                    raise EDFError(f"{path}: corrupt EDF header ({what} is {raw!r}, not a number)") from None

            if fixed[:8].strip() not in (b"0", b"\xffBIOSEMI"):
                raise EDFError(f"{path}: not an EDF file (version field {fixed[:8]!r})")
            header_bytes = num(fixed[184:192], "header size")
            n_records = num(fixed[236:244], "number of records")
            record_seconds = num(fixed[244:252], "record duration", float)
            n_signals = num(fixed[252:256], "number of signals")
            if n_signals <= 0 or header_bytes != 256 * (n_signals + 1):
                raise EDFError(f"{path}: corrupt EDF header ({n_signals} signals but header size {header_bytes})")
            rest = f.read(256 * n_signals)
            if len(rest) < 256 * n_signals:
                raise EDFError(f"{path}: truncated EDF header ({size} bytes, header needs {header_bytes})")
    except OSError as e:
        raise EDFError(f"{path}: cannot be read ({e.strerror})") from None

    def column(offset: int, width: int) -> list[bytes]:
        start = offset * n_signals
        return [rest[start + i * width: start + (i + 1) * width] for i in range(n_signals)]

    names = tuple(b.decode("ascii", "replace").strip() for b in column(0, 16))
    # offsets (in units of n_signals bytes): label 16, transducer 80, dim 8, pmin 8, pmax 8,
    # dmin 8, dmax 8, prefilter 80, samples 8
    samples_offset = 16 + 80 + 8 + 8 + 8 + 8 + 8 + 80
    samples = tuple(num(b, "samples per record") for b in column(samples_offset, 8))
    if not 0 < record_seconds < float("inf"):
        raise EDFError(f"{path}: corrupt EDF header (record duration {record_seconds} s)")
    for k, name in enumerate(names):
        pmin, pmax = (num(column(offset, 8)[k], f"{what} of channel {name!r}", float)
                      for offset, what in ((104, "physical minimum"), (112, "physical maximum")))
        dmin, dmax = (num(column(offset, 8)[k], f"{what} of channel {name!r}")
                      for offset, what in ((120, "digital minimum"), (128, "digital maximum")))
        if samples[k] <= 0:
            raise EDFError(f"{path}: corrupt EDF header (channel {name!r} has {samples[k]} samples per record)")
        # physical minimum above maximum is allowed (inverted polarity); equal ones leave no scale
        if not dmin < dmax or not (pmin != pmax and abs(pmin) < float("inf") and abs(pmax) < float("inf")):
            raise EDFError(f"{path}: corrupt EDF header (channel {name!r}: digital range {dmin}..{dmax}, "
                           f"physical range {pmin:g}..{pmax:g}; no scale from one to the other)")
    record_bytes = 2 * sum(samples)
    data_bytes = size - header_bytes
    if n_records < 0:  # -1: unknown while recording; infer from the size
        n_records = data_bytes // record_bytes
    if n_records == 0:
        raise EDFError(f"{path}: EDF file holds no data records")
    if data_bytes < n_records * record_bytes:
        raise EDFError(
            f"{path}: truncated EDF file (header declares {n_records} records = "
            f"{n_records * record_bytes} data bytes, the file has {data_bytes})"
        )
    return EDFHeader(n_records, record_seconds, names, samples)


def read_edf(path: str | os.PathLike, channels: list[str] | None = None):
    """Read an EDF file into an MNE Raw (volts), after checking its header.

    ``channels``: labels to keep (others are excluded before loading, to save memory).
    """
    import mne

    header = read_edf_header(path)
    kwargs = {}
    if channels is not None:
        kwargs["exclude"] = [n for n in header.channel_names if n not in set(channels)]
    try:
        raw = mne.io.read_raw_edf(path, preload=True, verbose="error", **kwargs)
    except Exception as e:  # MNE raises many types for malformed files
        raise EDFError(f"{path}: MNE could not read it ({type(e).__name__}: {e})") from None
    return raw
