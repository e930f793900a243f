"""Stage A of DreamDiffusion (Bai et al. 2023): masked signal modelling of EEG.

The trial is cut into time tokens (``patch`` samples x all channels), a random share
``mask_ratio`` of the tokens is hidden, a transformer encodes the visible ones and a
light decoder reconstructs the hidden ones from the encoding plus mask tokens; the loss
is the mean squared error on the hidden tokens only (as in MAE). The encoder's tokens,
without masking, are what the image generator attends to later.

Other datasets (another montage or sampling rate, e.g. the EEGDM corpus) get their own
token embedding and reconstruction head and share the transformer: pointing the
encoder at real data is a new entry in ``sources``.

Shape letters: B batch, C channels, L samples, P samples per token, N tokens (L / P),
D encoder width, E decoder width.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from .training import BatchSampler, load_checkpoint, save_checkpoint, train


@dataclass
class MaskedEEGConfig:
    n_channels: int = 32
    n_samples: int = 128
    patch: int = 8  # samples per time token
    dim: int = 64
    depth: int = 4
    heads: int = 4
    decoder_dim: int = 64
    decoder_depth: int = 2
    mask_ratio: float = 0.75
    # other inputs sharing the transformer: name -> channel count (same n_samples and patch)
    extra_sources: dict = field(default_factory=dict)

    @property
    def n_tokens(self) -> int:
        return self.n_samples // self.patch


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """[B, C, L] -> [B, N, C * P] (each token holds all channels of ``patch`` samples)."""
    B, C, L = x.shape
    if L % patch:
        raise ValueError(f"trial length {L} is not a multiple of the token length {patch}")
    return x.reshape(B, C, L // patch, patch).permute(0, 2, 1, 3).reshape(B, L // patch, C * patch)


def token_patch(n_samples: int, preferred: int = 8) -> int:
    """Samples per time token for trials of ``n_samples``: the smallest divisor of ``n_samples``
    that is at least ``preferred`` (8 for the simulated 128-sample trials, 10 for THINGS' 100)."""
    if n_samples < 1:
        raise ValueError(f"trials of {n_samples} samples")
    return next(p for p in range(min(preferred, n_samples), n_samples + 1) if n_samples % p == 0)


def unpatchify(tokens: torch.Tensor, n_channels: int) -> torch.Tensor:
    """[B, N, C * P] -> [B, C, L]."""
    B, N, CP = tokens.shape
    P = CP // n_channels
    return tokens.reshape(B, N, n_channels, P).permute(0, 2, 1, 3).reshape(B, n_channels, N * P)


def _blocks(dim: int, heads: int, depth: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)


class MaskedEEGModel(nn.Module):
    """Encoder (visible tokens) + decoder (all tokens) for masked signal modelling."""

    def __init__(self, config: MaskedEEGConfig):
        super().__init__()
        self.config = config
        D, E, N, P = config.dim, config.decoder_dim, config.n_tokens, config.patch
        sources = {"visual": config.n_channels, **config.extra_sources}
        self.embed = nn.ModuleDict({name: nn.Linear(c * P, D) for name, c in sources.items()})
        self.heads = nn.ModuleDict({name: nn.Linear(E, c * P) for name, c in sources.items()})
        self.pos = nn.Parameter(0.02 * torch.randn(1, N, D))
        self.encoder = _blocks(D, config.heads, config.depth)
        self.norm = nn.LayerNorm(D)
        self.to_decoder = nn.Linear(D, E)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, E))
        self.decoder_pos = nn.Parameter(0.02 * torch.randn(1, N, E))
        self.decoder = _blocks(E, config.heads, config.decoder_depth)
        self.decoder_norm = nn.LayerNorm(E)
        # per-channel standardisation of the visual EEG (microvolts in, unit scale inside)
        self.register_buffer("input_mean", torch.zeros(config.n_channels, 1))
        self.register_buffer("input_std", torch.ones(config.n_channels, 1))

    def set_normalization(self, eeg: np.ndarray) -> None:
        """Per-channel mean and std of (training) EEG [N, C, L] in microvolts."""
        self.input_mean.copy_(torch.as_tensor(eeg.mean(axis=(0, 2)), dtype=torch.float32)[:, None])
        self.input_std.copy_(torch.as_tensor(eeg.std(axis=(0, 2)) + 1e-6, dtype=torch.float32)[:, None])

    def normalize(self, x: torch.Tensor, source: str) -> torch.Tensor:
        return (x - self.input_mean) / self.input_std if source == "visual" else x

    def encode(self, x: torch.Tensor, source: str = "visual") -> torch.Tensor:
        """All tokens of unmasked EEG: [B, C, L] -> [B, N, D]."""
        tokens = self.embed[source](patchify(self.normalize(x, source), self.config.patch)) + self.pos  # [B, N, D]
        return self.norm(self.encoder(tokens))

    def reconstruct(self, x: torch.Tensor, mask_ratio: float | None = None, source: str = "visual",
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mask, encode, decode: (prediction [B, N, C*P], target [B, N, C*P], mask [B, N] 1 = hidden)."""
        ratio = self.config.mask_ratio if mask_ratio is None else mask_ratio
        target = patchify(self.normalize(x, source), self.config.patch)  # [B, N, C*P]
        B, N, _ = target.shape
        n_keep = max(1, int(round(N * (1 - ratio))))
        order = torch.rand(B, N, generator=generator, device=x.device).argsort(dim=1)  # random per trial
        keep = order[:, :n_keep]  # [B, n_keep]
        tokens = self.embed[source](target) + self.pos  # [B, N, D]
        visible = torch.gather(tokens, 1, keep[..., None].expand(-1, -1, tokens.shape[-1]))  # [B, n_keep, D]
        encoded = self.to_decoder(self.norm(self.encoder(visible)))  # [B, n_keep, E]
        full = self.mask_token.expand(B, N, -1).clone()  # [B, N, E]
        full.scatter_(1, keep[..., None].expand(-1, -1, full.shape[-1]), encoded)
        decoded = self.decoder_norm(self.decoder(full + self.decoder_pos))  # [B, N, E]
        mask = torch.ones(B, N, device=x.device)
        mask.scatter_(1, keep, 0.0)
        return self.heads[source](decoded), target, mask

    def masked_loss(self, x: torch.Tensor, mask_ratio: float | None = None, source: str = "visual",
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean squared error on the hidden tokens only."""
        prediction, target, mask = self.reconstruct(x, mask_ratio, source, generator)
        per_token = ((prediction - target) ** 2).mean(dim=-1)  # [B, N]
        return (per_token * mask).sum() / mask.sum()


def store_segments(store, n_segments: int, n_samples: int, sfreq_out: float, seed: int) -> np.ndarray:
    """:func:`corpus_segments` drawn from an EEG store's training and validation windows (never its
    test split), ``n_segments`` in all, shared between the splits in proportion to their size."""
    splits = [s for s in ("train", "val") if store.meta["shapes"][s][0]]
    sizes = np.array([store.meta["shapes"][s][0] for s in splits])
    counts = np.round(n_segments * sizes / sizes.sum()).astype(int)
    return np.concatenate([corpus_segments(store.windows(s), int(n), n_samples, store.meta["preprocess"]["sfreq"], sfreq_out,
                                           seed=seed + k, usable=store.present(s).all(axis=1))
                           for k, (s, n) in enumerate(zip(splits, counts))])


def corpus_segments(windows: np.ndarray, n_segments: int, n_samples: int, sfreq_in: float, sfreq_out: float,
                    seed: int, usable: np.ndarray | None = None) -> np.ndarray:
    """Random segments of a multichannel corpus [U, K, T] resampled to ``sfreq_out`` and
    standardised per channel and segment: [n_segments, K, n_samples].

    Used to add unlabeled EEG of another montage (the EEGDM corpus) to the pretraining.
    Windows with missing channels are left out: ``usable`` [U] marks the complete ones
    (a store's ``present`` mask); without it each window is checked for NaN, one at a time,
    so a memory-mapped corpus is never loaded whole.
    """
    from fractions import Fraction

    from scipy.signal import resample_poly

    if usable is None:
        usable = np.array([np.isfinite(w).all() for w in windows], dtype=bool)
    usable = np.flatnonzero(usable)
    if len(usable) == 0:
        raise ValueError("the corpus has no window without missing channels")
    ratio = Fraction(sfreq_out / sfreq_in).limit_denominator(100)
    need = int(np.ceil(n_samples * sfreq_in / sfreq_out)) + 1
    if need > windows.shape[-1]:
        raise ValueError(f"corpus windows of {windows.shape[-1]} samples are shorter than one segment ({need})")
    rng = np.random.default_rng([seed, 21])
    which = rng.choice(usable, size=n_segments)
    starts = rng.integers(0, windows.shape[-1] - need + 1, size=n_segments)
    raw = np.stack([windows[w, :, s: s + need] for w, s in zip(which, starts)]).astype(np.float64)  # [n, K, need]
    segments = resample_poly(raw, ratio.numerator, ratio.denominator, axis=-1)[..., :n_samples]
    segments = segments - segments.mean(axis=-1, keepdims=True)
    return (segments / (segments.std(axis=-1, keepdims=True) + 1e-6)).astype(np.float32)


def pretrain(model: MaskedEEGModel, sources: dict, optim, seed: int, desc: str = "masked EEG") -> dict:
    """Masked signal modelling on unlabeled EEG: ``sources`` maps a source name to its trials
    [N, C, L] (a tensor on the training device). Each step takes one batch from one source,
    drawn with probability proportional to its size."""

    names = list(sources)
    sizes = torch.tensor([len(sources[n]) for n in names], dtype=torch.float64)
    samplers = {n: BatchSampler(len(sources[n]), optim.batch_size, seed + 7 * k) for k, n in enumerate(names)}
    generator = torch.Generator().manual_seed(seed)
    device = next(iter(sources.values())).device
    mask_generator = torch.Generator(device=device).manual_seed(seed + 1)

    def loss_fn(step: int):
        name = names[int(torch.multinomial(sizes, 1, generator=generator))]
        loss = model.masked_loss(sources[name][samplers[name]().to(device)], source=name, generator=mask_generator)
        return loss, {f"loss_{name}": loss.detach()} if len(names) > 1 else {}

    return train(model.parameters(), loss_fn, optim, desc=desc)


def save_encoder(path, model: MaskedEEGModel, step: int, result: dict, extra: dict | None = None):

    return save_checkpoint(path, model.config, step, {"model": model.state_dict(), "optimizer": result["optimizer"]},
                           result["history"], extra)


def load_encoder(path, hint: str = "") -> tuple[MaskedEEGModel, dict]:
    """The pretrained encoder and its checkpoint payload (history, extra)."""

    config, payload = load_checkpoint(path, MaskedEEGConfig, hint)
    model = MaskedEEGModel(config)
    model.load_state_dict(payload["states"]["model"])
    return model, payload


@torch.no_grad()
def token_features(encoder: "MaskedEEGModel", eeg: np.ndarray, device="cpu", batch: int = 512) -> np.ndarray:
    """The encoder's tokens of every trial of ``eeg`` [N, C, T], flattened: [N, tokens x dim]."""
    x = torch.from_numpy(eeg).to(device)
    return torch.cat([encoder.encode(x[i:i + batch]).flatten(1) for i in range(0, len(x), batch)]).cpu().numpy()


def probe_accuracy(train_features: np.ndarray, train_labels: np.ndarray, val_features: np.ndarray,
                   val_labels: np.ndarray, C: float = 0.01) -> float:
    """Validation accuracy of a standardised, L2-regularised logistic regression (the linear probe of
    notebook 80's representations)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=300))
    clf.fit(train_features, train_labels)
    return float(clf.score(val_features, val_labels))
