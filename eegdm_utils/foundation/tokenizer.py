"""EEGFoundation's discrete amplitude tokens: one EEG channel as a sentence of integer ids.

Released tokenizer (``MinMaxTokenizer``): each channel window is min-max scaled to [0, 1]
over the window and ``round(u * 1999)`` gives ids 0..1999. It keeps the shape of the trace
and throws away its absolute amplitude (a 10 uV and a 300 uV copy of a trace get the same
ids). Special ids follow the release: id 2000 is unused, [MASK] 2001, [PAD] 2002,
[CLS] 2003, [SEP] 2004, [UNK] 2005; 2006 ids in all.

Amplitude-aware tokenizer (``AmplitudeTokenizer``, beyond the release): the 2000 bins cover
a fixed range of +-``range_uv`` microvolts, so absolute amplitude is kept; values outside
are clipped to the range. Bins are uniform in uV, or mu-law spaced (finer near 0 uV, where
most of ordinary EEG lies).

The release works on 200 Hz, 0.3-75 Hz band-passed, 60 Hz notched signals, 2,000 samples
of one channel per sequence, and drops segments that reach 100 uV (``reject_out_of_range``).
Here windows are in store units (x1e4 of volts: one unit is 100 uV, ``UNIT_UV``).

Missing channels are NaN in the store: tokenizing NaN is an error, never a silent bin.

Shape letters: N sequences (channel windows), L samples, S sequence length (with [CLS], [SEP] and padding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

N_LEVELS = 2000  # amplitude ids 0..1999
MASK_ID, PAD_ID, CLS_ID, SEP_ID, UNK_ID = 2001, 2002, 2003, 2004, 2005
VOCAB_SIZE = 2006
SPECIAL_IDS = (MASK_ID, PAD_ID, CLS_ID, SEP_ID, UNK_ID)
UNIT_UV = 100.0  # microvolts per store unit


def _checked(x) -> torch.Tensor:
    """x as a float tensor; NaN (a missing channel) or inf is an error, not a token."""
    x = torch.as_tensor(x)
    if x.ndim == 0:
        raise ValueError("tokenizers take windows [..., L], not a scalar")
    x = x if x.is_floating_point() else x.float()
    bad = ~torch.isfinite(x)
    if bad.any():
        rows = bad.reshape(-1, x.shape[-1]).any(-1)
        raise ValueError(f"cannot tokenize {int(rows.sum())} of {rows.numel()} channel windows: they hold NaN or "
                         "inf (missing channels are NaN in the store); drop channels with present == False first")
    return x


def _amplitude_ids(ids) -> torch.Tensor:
    ids = torch.as_tensor(ids)
    if ids.numel() and (ids.min() < 0 or ids.max() >= N_LEVELS):
        raise ValueError(f"decode takes amplitude ids 0..{N_LEVELS - 1}; strip special tokens first")
    return ids


def _level(u: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> nearest of the N_LEVELS ids."""
    return torch.round(u * (N_LEVELS - 1)).long()


@dataclass(frozen=True)
class MinMaxTokenizer:
    """The released tokenizer: per-window min-max scaling, 2000 levels."""

    def bounds(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """The window's min and max: [..., L] -> ([..., 1], [..., 1])."""
        x = _checked(x)
        return x.amin(-1, keepdim=True), x.amax(-1, keepdim=True)

    def encode(self, x) -> torch.Tensor:
        """[..., L] float -> [..., L] int64 ids 0..1999 (a flat window gives id 0)."""
        x = _checked(x)
        low, high = self.bounds(x)  # [..., 1] each
        span = (high - low).clamp_min(torch.finfo(x.dtype).tiny)  # a flat window: 0 / tiny = 0
        return _level((x - low) / span)  # [..., L]

    def decode(self, ids, low=None, high=None) -> torch.Tensor:
        """ids -> the [0, 1] scale, or signal units given the window's ``bounds``."""
        u = _amplitude_ids(ids).float() / (N_LEVELS - 1)
        if low is None or high is None:
            return u
        return torch.as_tensor(low) + u * (torch.as_tensor(high) - torch.as_tensor(low))


def mu_law(v: torch.Tensor, mu: float) -> torch.Tensor:
    """Plain mu-law on [-1, 1] (not the project's staged one: every value is compressed)."""
    return torch.sign(v) * torch.log1p(mu * v.abs()) / math.log1p(mu)


def inverse_mu_law(c: torch.Tensor, mu: float) -> torch.Tensor:
    return torch.sign(c) * torch.expm1(c.abs() * math.log1p(mu)) / mu


@dataclass(frozen=True)
class AmplitudeTokenizer:
    """Fixed bins over +-``range_uv`` uV (absolute amplitude kept; values outside clipped)."""

    range_uv: float = 100.0
    spacing: str = "uniform"  # "uniform" | "mulaw"
    mu: float = 255.0
    unit_uv: float = UNIT_UV  # uV per input unit (store units: 100 uV)

    def __post_init__(self):
        if self.spacing not in ("uniform", "mulaw"):
            raise ValueError(f"spacing must be 'uniform' or 'mulaw', not {self.spacing!r}")
        if self.range_uv <= 0:
            raise ValueError(f"range_uv must be positive, not {self.range_uv}")

    def encode(self, x) -> torch.Tensor:
        """[..., L] float (input units) -> [..., L] int64 ids 0..1999."""
        v = (_checked(x) * (self.unit_uv / self.range_uv)).clamp(-1.0, 1.0)  # [..., L] in [-1, 1]
        c = mu_law(v, self.mu) if self.spacing == "mulaw" else v
        return _level((c + 1) / 2)

    def decode(self, ids) -> torch.Tensor:
        """ids -> the bin centres in input units."""
        c = _amplitude_ids(ids).float() / (N_LEVELS - 1) * 2 - 1  # [..., L] in [-1, 1]
        v = inverse_mu_law(c, self.mu) if self.spacing == "mulaw" else c
        return v * (self.range_uv / self.unit_uv)


@dataclass
class TokenizerConfig:
    """Which tokenizer a run uses (saved with the encoder: embeddings need the same one)."""

    kind: str = "minmax"  # "minmax" (released) | "amplitude"
    range_uv: float = 100.0  # amplitude only
    spacing: str = "uniform"  # amplitude only: "uniform" | "mulaw"
    mu: float = 255.0
    unit_uv: float = UNIT_UV


def make_tokenizer(config: TokenizerConfig) -> MinMaxTokenizer | AmplitudeTokenizer:
    if config.kind == "minmax":
        return MinMaxTokenizer()
    if config.kind == "amplitude":
        return AmplitudeTokenizer(config.range_uv, config.spacing, config.mu, config.unit_uv)
    raise ValueError(f"tokenizer kind must be 'minmax' or 'amplitude', not {config.kind!r}")


def build_sequences(ids: torch.Tensor, length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """[CLS] + ids + [SEP], padded with [PAD] to ``length``: [N, L] -> (input_ids [N, S], attention_mask [N, S])."""
    N, L = ids.shape
    S = L + 2 if length is None else length
    if S < L + 2:
        raise ValueError(f"sequences of {L} tokens need a length of at least {L + 2} ([CLS] and [SEP]), not {S}")
    seq = torch.full((N, S), PAD_ID, dtype=torch.long, device=ids.device)  # [N, S]
    seq[:, 0], seq[:, 1:L + 1], seq[:, L + 1] = CLS_ID, ids, SEP_ID
    return seq, (seq != PAD_ID).long()


def embedding_sequences(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The release's input when it extracts a channel's embedding (``RoformerModelWrapper.forward``):
    [CLS] + ids without their last two + [SEP], as long as ``ids``: [N, L] -> (input_ids, attention_mask) [N, L]."""
    if ids.shape[1] < 3:
        raise ValueError(f"a sequence of {ids.shape[1]} ids leaves none between [CLS] and [SEP]")
    return build_sequences(ids[:, :-2])


def reject_out_of_range(x, threshold_uv: float = 100.0, unit_uv: float = UNIT_UV,
                        dims: int = 1) -> tuple[torch.Tensor, int]:
    """The release's artefact rejection: a segment (the last ``dims`` axes of x) is dropped when
    any value reaches ``threshold_uv``. NaN (missing channels) neither rejects nor passes a
    segment on its own. Returns (keep [...] bool, number rejected) so the caller can record it."""
    x = torch.as_tensor(x)
    peak = torch.nan_to_num(x.abs(), nan=0.0).flatten(-dims).amax(-1)  # [...] in input units
    keep = peak * unit_uv < threshold_uv
    return keep, int((~keep).sum())
