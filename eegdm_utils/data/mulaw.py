"""Staged mu-law companding (EEGDM).

After the x1e4 scaling one unit is 100 uV. Ordinary EEG (|x| <= 1) passes unchanged;
larger values (artefacts, pops, high-amplitude discharges) are compressed by mu-law,
so that they do not dominate the diffusion loss:

    u(x) = x                                     for |x| <= 1
    u(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu)    for |x| > 1

Both branches give |u| = 1 at |x| = 1, so u is continuous and strictly increasing and
the inverse is exact: x = u for |u| <= 1, else sign(u) ((1 + mu)^|u| - 1) / mu.
Works on numpy arrays and torch tensors of any shape; inputs are never modified.
"""

from __future__ import annotations

import math

import numpy as np

MU = 255.0


def _backend(x):
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return torch
    except ImportError:  # pragma: no cover
        pass
    return np


def staged_mu_law(x, mu: float = MU):
    xp = _backend(x)
    compressed = xp.sign(x) * xp.log1p(mu * xp.abs(x)) / math.log1p(mu)
    return xp.where(xp.abs(x) > 1, compressed, x)


def inverse_staged_mu_law(u, mu: float = MU):
    xp = _backend(u)
    magnitude = xp.abs(u)
    # clamp inside the exponential so the identity branch never overflows
    expanded = xp.sign(u) * xp.expm1(xp.clip(magnitude, 1.0, None) * math.log1p(mu)) / mu
    return xp.where(magnitude > 1, expanded, u)
