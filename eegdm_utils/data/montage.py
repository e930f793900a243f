"""Channel names of the TUH EEG corpus, the TCP bipolar montage of TUEV, and the
mapping of other EDF naming schemes onto them.

A recording's channels are read as *derivations*: ``V(a) - V(b)`` between two
electrodes, where a referential channel ``EEG FP1-REF`` is ``V(FP1) - V(REF)``. Any TCP
channel that is a signed sum of available derivations along a path of electrodes is
derived exactly (linear montages commute with the linear preprocessing). A TCP channel
that cannot be derived is *missing*: it is never zero-filled or invented; see
:func:`derive_tcp` for the rule.
"""

from __future__ import annotations

import re
import warnings
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# The 23 referential electrodes of the EEGDM/BIOT TUEV reference, in its order.
REFERENTIAL_ELECTRODES: tuple[str, ...] = (
    "FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8",
    "T3", "T4", "T5", "T6", "A1", "A2", "FZ", "CZ", "PZ", "T1", "T2",
)
TUH_CHANNEL_NAMES: tuple[str, ...] = tuple(f"EEG {e}-REF" for e in REFERENTIAL_ELECTRODES)

# The 22 TCP bipolar channels in the reference order (the .rec channel index).
TCP_PAIRS: tuple[tuple[str, str], ...] = (
    ("FP1", "F7"), ("F7", "T3"), ("T3", "T5"), ("T5", "O1"),
    ("FP2", "F8"), ("F8", "T4"), ("T4", "T6"), ("T6", "O2"),
    ("A1", "T3"), ("T3", "C3"), ("C3", "CZ"), ("C4", "CZ"),
    ("T4", "C4"), ("A2", "T4"), ("FP1", "F3"), ("F3", "C3"),
    ("C3", "P3"), ("P3", "O1"), ("FP2", "F4"), ("F4", "C4"),
    ("C4", "P4"), ("P4", "O2"),
)
TCP_NAMES: tuple[str, ...] = tuple(f"{a}-{b}" for a, b in TCP_PAIRS)
N_TCP = len(TCP_PAIRS)

# 10-10 names that replaced the old 10-20 temporal names.
NEW_TO_OLD = {"T7": "T3", "P7": "T5", "T8": "T4", "P8": "T6"}
# Suffixes that name a reference rather than a second electrode.
REFERENCE_TOKENS = {"REF", "LE", "AR", "AVG", "CAR", "RE", "M1M2", "A1A2", "LINKED"}
REF = "REF"  # the node that stands for a recording's common reference
_PREFIXES = ("EEG ", "EEG-", "EEG_")


def canonical_electrode(token: str) -> str:
    """``Fp1`` -> ``FP1``; ``T7`` -> ``T3`` (new names map to the old ones TUH uses)."""
    token = token.strip().upper().replace(" ", "")
    return NEW_TO_OLD.get(token, token)


@dataclass(frozen=True)
class Derivation:
    """One recorded channel read as ``V(positive) - V(negative)``."""

    name: str  # the channel name as it appears in the file
    positive: str
    negative: str  # an electrode, or REF for a referential channel


_ELECTRODE = re.compile(r"^[A-Z]{1,3}[0-9]{0,2}Z?$")


def parse_channel_name(name: str) -> Derivation | None:
    """Read an EDF channel label as a derivation, or ``None`` for non-EEG channels.

    Accepts ``EEG FP1-REF``, ``Fp1``, ``EEG Fp1``, ``FP1-LE``, ``FP1-F7``, ``T7-P7`` and
    MNE's de-duplicated labels (``T8-P8-0``).
    """
    raw = name.strip()
    upper = raw.upper()
    for prefix in _PREFIXES:
        if upper.startswith(prefix):
            upper = upper[len(prefix):]
            break
    else:
        if " " in upper:  # "ECG ECG", "EMG X": another modality
            return None
    parts = [p for p in re.split(r"[-\s]+", upper) if p]
    if len(parts) == 3 and parts[2].isdigit():  # MNE's suffix for duplicate labels
        parts = parts[:2]
    if not parts or len(parts) > 2:
        return None
    first = canonical_electrode(parts[0])
    if not _ELECTRODE.match(first) or first in REFERENCE_TOKENS:
        return None
    if len(parts) == 1 or parts[1] in REFERENCE_TOKENS:
        return Derivation(raw, first, REF)
    second = canonical_electrode(parts[1])
    if not _ELECTRODE.match(second):
        return None
    return Derivation(raw, first, second)


@dataclass(frozen=True)
class TCPMapping:
    """How each TCP channel is obtained from the recorded channels.

    ``weights[k, j]`` is the coefficient of recorded channel ``j`` in TCP channel ``k``;
    rows of missing channels are all zero and ``present[k]`` is False.
    """

    channel_names: tuple[str, ...]
    weights: np.ndarray  # [22, J]
    present: np.ndarray  # [22] bool

    @property
    def missing(self) -> list[str]:
        return [TCP_NAMES[k] for k in range(N_TCP) if not self.present[k]]

    def apply(self, data: np.ndarray) -> np.ndarray:
        """[J, T] recorded -> [22, T] TCP; missing channels are NaN (never zeros)."""
        out = self.weights @ data  # [22, T]
        out[~self.present] = np.nan
        return out


def derive_tcp(channel_names: list[str] | tuple[str, ...]) -> TCPMapping:
    """Map recorded channels to the 22 TCP channels by exact linear derivation.

    Each usable channel is an edge ``positive - negative`` of an electrode graph
    (referential channels connect to the node REF). A TCP channel ``a - b`` is the signed
    sum of the edges on the shortest path from ``a`` to ``b``; a direct channel is used
    as it is. With no path the channel is missing (``present`` False). Duplicate labels
    keep their first occurrence.
    """
    edges: dict[str, list[tuple[str, int, float]]] = {}
    seen: set[tuple[str, str]] = set()
    for j, name in enumerate(channel_names):
        d = parse_channel_name(name)
        if d is None or d.positive == d.negative:
            continue
        key = (d.positive, d.negative)
        if key in seen or key[::-1] in seen:
            continue
        seen.add(key)
        edges.setdefault(d.positive, []).append((d.negative, j, 1.0))
        edges.setdefault(d.negative, []).append((d.positive, j, -1.0))

    weights = np.zeros((N_TCP, len(channel_names)))
    present = np.zeros(N_TCP, dtype=bool)
    for k, (a, b) in enumerate(TCP_PAIRS):
        path = _shortest_path(edges, a, b)
        if path is None:
            continue
        for j, sign in path:
            weights[k, j] += sign
        present[k] = True
    return TCPMapping(tuple(channel_names), weights, present)


def _shortest_path(edges, start: str, goal: str):
    """Breadth-first search; returns [(channel index, sign)] with V(start) - V(goal) = sum."""
    if start not in edges or goal not in edges:
        return None
    previous: dict[str, tuple[str, int, float] | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            break
        for nxt, j, sign in edges[node]:
            if nxt not in previous:
                previous[nxt] = (node, j, sign)
                queue.append(nxt)
    if goal not in previous:
        return None
    steps, node = [], goal
    while previous[node] is not None:
        parent, j, sign = previous[node]
        steps.append((j, sign))  # V(parent) - V(node) = sign * channel j
        node = parent
    return steps


@lru_cache(maxsize=1)
def electrode_positions() -> dict[str, np.ndarray]:
    """3-D positions (m) of the 23 TUH electrodes from MNE's ``standard_1020`` montage.

    T1 and T2 (anterior temporal, not in the 10-20 montage) take the positions of
    FT9 and FT10, their closest 10-10 neighbours.
    """
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        montage = mne.channels.make_standard_montage("standard_1020")
    pos = {name.upper(): np.asarray(p) for name, p in montage.get_positions()["ch_pos"].items()}
    aliases = {"T1": "FT9", "T2": "FT10"}
    return {e: pos[aliases.get(e, e)] for e in REFERENTIAL_ELECTRODES}


def bipolar_from_referential(ref_data: np.ndarray) -> np.ndarray:
    """[23, T] referential (reference order) -> [22, T] TCP bipolar."""
    index = {e: i for i, e in enumerate(REFERENTIAL_ELECTRODES)}
    a = [index[p] for p, _ in TCP_PAIRS]
    b = [index[q] for _, q in TCP_PAIRS]
    return ref_data[a] - ref_data[b]
