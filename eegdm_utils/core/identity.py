"""What identifies a run's inputs: fingerprints of settings, arrays and weights, and the
names of the settings in which two runs differ. Every check that refuses to reuse a store,
a cache, a checkpoint or a trained model built with other settings goes through here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, is_dataclass

import numpy as np


def fingerprint(obj) -> str:
    """A short hash of JSON-able settings (key order does not matter)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def array_fingerprint(*arrays) -> str:
    """A short hash of arrays, their shapes and dtypes included (the data a model was trained on)."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(str((a.shape, a.dtype.str)).encode())
        digest.update(a.tobytes())
    return digest.hexdigest()[:16]


def weights_sha256(model) -> str:
    """A fingerprint of a torch model's weights (not of the file that holds them: saving the
    same weights again gives the same fingerprint)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def differences(a, b, prefix: str = "") -> list[str]:
    """Dotted names of the settings in which ``a`` and ``b`` differ (dicts, nested dicts or
    dataclasses), sorted; [] when they agree."""
    a, b = (asdict(x) if is_dataclass(x) and not isinstance(x, type) else x for x in (a, b))
    keys = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            keys += differences(va, vb, f"{prefix}{k}.")
        elif va != vb:
            keys.append(f"{prefix}{k}")
    return keys
