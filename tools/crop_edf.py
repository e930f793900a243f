"""Crop an EDF(+) file to its first N data records, byte for byte (how data/real/ was made).

    python tools/crop_edf.py SOURCE.edf TARGET.edf SECONDS

The header is copied with only its record count changed and the first records kept as they are
(no resampling, no rescaling: the samples are the original digital values). Only files of 1-s
records are accepted, so that N records are N seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eegdm_utils.data.edf import EDFError, read_edf_header


def crop_edf(source: str | Path, target: str | Path, seconds: int) -> int:
    """Write the first ``seconds`` records of ``source`` to ``target``; returns the records written."""
    source, target = Path(source), Path(target)
    header = read_edf_header(source)  # checks the header against the file size
    if header.record_seconds != 1:
        raise EDFError(f"{source}: records of {header.record_seconds} s; only 1-s records are cropped here")
    n = min(int(seconds), header.n_records)
    raw = source.read_bytes()
    header_bytes = int(raw[184:192].decode("ascii").strip())
    record_bytes = 2 * sum(header.samples_per_record)
    head = bytearray(raw[:header_bytes])
    head[236:244] = f"{n:<8d}".encode("ascii")
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(bytes(head) + raw[header_bytes:header_bytes + n * record_bytes])
    tmp.replace(target)
    return n


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    print(f"{sys.argv[2]}: {crop_edf(sys.argv[1], sys.argv[2], int(sys.argv[3]))} s")
