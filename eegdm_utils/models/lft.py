"""The Latent Fusion Transformer (LFT) of EEGDM: a classifier of cached SSMDP activity.

Input: for each backbone layer n and pool p (1-s window), 22 channel tokens of width H.
Per pool, 16 learnable fusion tokens (separate for each pool) are carried from the first
backbone layer to the last; at layer n a fusion block (shared across pools, one per layer)

    tokens += SelfAttention(LN(tokens))
    tokens += CrossAttention(LN(tokens), channel tokens of layer n, pool p)   # missing channels masked
    tokens += FFN(LN(tokens))                                                 # H -> 4H -> H, GELU

updates them. Then the P x 16 tokens, plus a learnable positional embedding, go through
8 pre-LN self-attention blocks; their mean feeds a linear head. The paper configuration
(H 128, 20 layers, 5 pools, 16 tokens, 8 heads, 8 final blocks, 6 classes) has 6,898,950
parameters.

The channel tokens are the cached activity itself: the std of each block's gate over a pool,
small (at most about 0.5) and of very different scale from layer to layer. The reference feeds
them as they are (``channel_norm="none"``, the paper configuration). Options:
``"log-standard"`` takes their log and standardises each (layer, unit) with the training cache's
mean and std (:meth:`LatentFusionTransformer.fit_token_statistics`; buffers, no parameters), so
a token keeps its amplitude relative to other windows and channels; ``"standard"`` does the same
without the log; ``"layer"`` layer-normalises each token over H, which removes its overall level.
The cross-attention over channel tokens does not know which channel a token came from (only the
backbone's channel conditioning marks it); ``channel_embed`` adds a learnable channel embedding
(per channel, or per hemisphere: "mirror"), the reference's option ``have_ch_pos_embed`` except
that the reference concatenates it to the token where this adds it (the width stays H).

Ablation options, as the reference's scripts (``src/extra/no_fusion.py``, ``mean_fusion.py``):
``fusion="none"`` (no fusion blocks: every (layer, pool, channel) token goes to the final
blocks, with a positional embedding; the reference uses 34 of them, 7,023,622 parameters),
``fusion="mean"`` (each (pool, channel) token averaged over the layers, the P x K tokens
straight into the final blocks; the reference uses 35), ``layers`` (a subset of backbone
layers), and ``n_pool`` (other window lengths or sampling rates).

Shape letters: B batch, n layers, P pools, K channels, T fusion tokens, H width, C classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..data.montage import TCP_PAIRS


@dataclass
class LFTConfig:
    d_model: int = 128  # the backbone's d_model
    n_layer: int = 20  # backbone layers in the cache
    n_pool: int = 5
    n_channels: int = 22
    n_tokens: int = 16  # fusion tokens per pool
    n_heads: int = 8
    ff_mult: int = 4
    n_final: int = 8  # self-attention blocks after fusion
    n_classes: int = 6
    fusion: str = "layer"  # "layer" (paper) | "mean" | "none"
    layers: tuple[int, ...] | None = None  # use only these backbone layers
    dropout: float = 0.0
    channel_norm: str = "none"  # "none" (paper) | "log-standard" | "standard" | "layer" (LayerNorm over H)
    channel_embed: str = "none"  # "none" (paper) | "channel" (one per channel) | "mirror" (one per hemisphere)
    init: str = "uniform"  # fusion tokens and positions: "uniform" U[0,1) (reference) | "normal" N(0, 0.02^2)

    def __post_init__(self):
        if self.fusion not in ("layer", "mean", "none"):
            raise ValueError(f"fusion must be layer, mean or none, not {self.fusion!r}")
        if self.channel_embed not in ("none", "channel", "mirror"):
            raise ValueError(f"channel_embed must be none, channel or mirror, not {self.channel_embed!r}")
        if self.channel_norm is True or self.channel_norm is False:  # the earlier boolean switch
            self.channel_norm = "layer" if self.channel_norm else "none"
        if self.channel_norm not in ("layer", "standard", "log-standard", "none"):
            raise ValueError(f"channel_norm must be layer, standard, log-standard or none, not {self.channel_norm!r}")
        if self.init not in ("uniform", "normal"):
            raise ValueError(f"init must be uniform or normal, not {self.init!r}")
        if self.layers is not None:
            self.layers = tuple(int(i) for i in self.layers)
            bad = [i for i in self.layers if not 0 <= i < self.n_layer]
            if bad:
                raise ValueError(f"layers {bad} are outside the backbone's 0..{self.n_layer - 1}")

    @property
    def used_layers(self) -> int:
        return len(self.layers) if self.layers is not None else self.n_layer


class FFN(nn.Sequential):
    def __init__(self, d: int, mult: int, dropout: float):
        super().__init__(nn.Linear(d, d * mult), nn.GELU(), nn.Dropout(dropout), nn.Linear(d * mult, d))


class SelfAttentionBlock(nn.Module):
    """Pre-LN: x += SA(LN(x)); x += FFN(LN(x))."""

    def __init__(self, d: int, heads: int, mult: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.ffn = FFN(d, mult, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.ffn(self.norm2(x))


class FusionBlock(nn.Module):
    """Pre-LN: tokens += SA(LN(tokens)); tokens += CA(LN(tokens), channels); tokens += FFN(LN(tokens))."""

    def __init__(self, d: int, heads: int, mult: int, dropout: float):
        super().__init__()
        self.norm_self, self.norm_cross, self.norm_ffn = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.ffn = FFN(d, mult, dropout)

    def forward(self, tokens: torch.Tensor, channels: torch.Tensor, missing: torch.Tensor | None) -> torch.Tensor:
        """tokens [B', T, H], channels [B', K, H], missing [B', K] (True = ignore)."""
        h = self.norm_self(tokens)
        tokens = tokens + self.self_attn(h, h, h, need_weights=False)[0]
        h = self.norm_cross(tokens)
        tokens = tokens + self.cross_attn(h, channels, channels, key_padding_mask=missing, need_weights=False)[0]
        return tokens + self.ffn(self.norm_ffn(tokens))


class LatentFusionTransformer(nn.Module):
    def __init__(self, config: LFTConfig | None = None):
        super().__init__()
        self.config = c = config if config is not None else LFTConfig()
        H = c.d_model
        if c.fusion in ("none", "mean"):  # no fusion blocks: channel tokens straight into the final blocks
            n_positions = (c.used_layers if c.fusion == "none" else 1) * c.n_pool * c.n_channels
            self.fusion_blocks = nn.ModuleList()
            self.fusion_tokens = None
        else:
            n_positions = c.n_pool * c.n_tokens
            self.fusion_blocks = nn.ModuleList(FusionBlock(H, c.n_heads, c.ff_mult, c.dropout) for _ in range(c.used_layers))
            self.fusion_tokens = nn.Parameter(self._init(c.n_pool, c.n_tokens, H))  # [P, T, H]
        self.position = nn.Parameter(self._init(n_positions, H))
        # per (layer, unit) statistics of the training cache ("standard" norms; set by fit_token_statistics)
        self.register_buffer("token_mean", torch.zeros(c.used_layers, H))
        self.register_buffer("token_std", torch.ones(c.used_layers, H))
        if c.channel_embed == "none":
            self.channel_embedding = None
        else:
            # the reference's optional channel position embedding: per channel, or per hemisphere
            # ("mirror": the first electrode's number odd = left, even = right)
            index = torch.arange(c.n_channels) if c.channel_embed == "channel" else hemisphere_index()
            self.register_buffer("channel_index", index, persistent=False)
            self.channel_embedding = nn.Parameter(self._init(int(index.max()) + 1, H))
        self.final_blocks = nn.ModuleList(SelfAttentionBlock(H, c.n_heads, c.ff_mult, c.dropout) for _ in range(c.n_final))
        self.head = nn.Linear(H, c.n_classes)

    def _init(self, *shape: int) -> torch.Tensor:
        # the reference draws its learnable tokens and positions from torch.rand (U[0, 1))
        return torch.rand(shape) if self.config.init == "uniform" else torch.randn(shape) * 0.02

    def forward(self, latents: torch.Tensor, present: torch.Tensor | None = None,
                unfilled_pools: bool = False) -> torch.Tensor:
        """latents [B, n, P, K, H] (missing channels may hold anything), present [B, K] bool -> logits [B, C].

        ``unfilled_pools``: accept fewer pools than ``n_pool`` (layer fusion only), as the reference does when
        it tests on shorter windows: the fusion tokens of the pools past P never see data and reach the final
        blocks as they are."""
        c = self.config
        if c.layers is not None:
            latents = latents[:, list(c.layers)]
        B, n, P, K, H = latents.shape
        pools_fit = P == c.n_pool or (unfilled_pools and c.fusion == "layer" and 0 < P < c.n_pool)
        if not pools_fit or K != c.n_channels or H != c.d_model:
            raise ValueError(f"latents of shape {tuple(latents.shape)} do not fit the LFT "
                             f"(pools {c.n_pool}, channels {c.n_channels}, width {c.d_model}"
                             f"{'; fewer pools only with layer fusion' if unfilled_pools else ''})")
        missing = None if present is None else ~present.bool()  # [B, K]
        latents = self.normalise_tokens(latents)
        if self.channel_embedding is not None:
            latents = latents + self.channel_embedding[self.channel_index]  # [K, H] over B, n, P
        if missing is not None:
            latents = latents.masked_fill(missing[:, None, None, :, None], 0.0)
        if c.fusion == "none":
            tokens = latents.reshape(B, n * P * K, H)  # every (layer, pool, channel) token
        elif c.fusion == "mean":
            tokens = latents.mean(dim=1).reshape(B, P * K, H)  # each (pool, channel) token averaged over layers
        else:
            tokens = self.fuse(latents, missing)  # [B, P*T, H]
            if P < c.n_pool:  # the unfilled pools' tokens, never fused with data
                unfilled = self.fusion_tokens[P:].expand(B, -1, -1, -1).reshape(B, (c.n_pool - P) * c.n_tokens, H)
                tokens = torch.cat([tokens, unfilled], dim=1)
        tokens = tokens + self.position
        for block in self.final_blocks:
            tokens = block(tokens)
        return self.head(tokens.mean(dim=1))  # [B, C]

    def normalise_tokens(self, latents: torch.Tensor) -> torch.Tensor:
        """The channel tokens [B, n, P, K, H] (layers already selected) as the fusion blocks see them."""
        c = self.config
        if c.channel_norm == "layer":
            return nn.functional.layer_norm(latents, (latents.shape[-1],))
        if c.channel_norm == "none":
            return latents
        if c.channel_norm == "log-standard":
            latents = torch.log(latents.clamp_min(1e-6))
        return (latents - self.token_mean[:, None, None]) / self.token_std[:, None, None]  # [n, 1, 1, H]

    @torch.no_grad()
    def fit_token_statistics(self, latents, present, chunk: int = 256) -> None:
        """Set the "standard" norms' per (layer, unit) mean and std from training latents
        [N, n, P, K, H] (array or memmap, read ``chunk`` windows at a time; missing channels
        excluded via ``present`` [N, K]). Does nothing for the other norms. No labels are used."""
        c = self.config
        if c.channel_norm not in ("standard", "log-standard"):
            return
        layers = slice(None) if c.layers is None else list(c.layers)
        total = total_sq = count = 0.0
        for start in range(0, len(latents), chunk):
            x = np.asarray(latents[start:start + chunk][:, layers], dtype=np.float64)  # [b, n, P, K, H]
            if c.channel_norm == "log-standard":
                x = np.log(np.maximum(x, 1e-6))
            keep = np.asarray(present[start:start + chunk], dtype=bool)[:, None, None, :, None]  # [b, 1, 1, K, 1]
            x = np.where(keep, x, 0.0)
            total = total + x.sum(axis=(0, 2, 3))  # [n, H]
            total_sq = total_sq + (x * x).sum(axis=(0, 2, 3))
            count = count + keep.sum() * x.shape[2]  # kept tokens per (layer, unit)
        mean = total / count
        var = np.maximum(total_sq / count - mean**2, 0.0) * count / max(count - 1, 1)
        self.token_mean.copy_(torch.from_numpy(mean))
        self.token_std.copy_(torch.from_numpy(np.sqrt(var)).clamp_min(1e-6))

    def fuse(self, latents: torch.Tensor, missing: torch.Tensor | None) -> torch.Tensor:
        """The fusion step: pools folded into the batch, tokens carried through the layers."""
        B, n, P, K, H = latents.shape
        T = self.config.n_tokens
        tokens = self.fusion_tokens[:P].expand(B, P, T, H).reshape(B * P, T, H)  # separate tokens per pool
        mask = None if missing is None else missing.repeat_interleave(P, dim=0)  # [B*P, K]
        for i, block in enumerate(self.fusion_blocks):
            channels = latents[:, i].reshape(B * P, K, H)  # layer i's channel tokens, per pool
            tokens = block(tokens, channels, mask)
        return tokens.reshape(B, P * T, H)


def hemisphere_index() -> torch.Tensor:
    """[22] 0 = left, 1 = right, by the number of each TCP channel's first electrode (the
    reference's "mirror" channel embedding; midline-free in the TCP montage)."""

    return torch.tensor([1 - int(a[-1]) % 2 for a, _ in TCP_PAIRS])


def no_decay_groups(model: nn.Module, weight_decay: float, exempt: tuple[str, ...] = ("fusion_tokens",)) -> list[dict]:
    """AdamW groups as the reference's ``bias_1dim_no_wd`` with its ``no_wd`` list: no weight decay on
    the parameters named in ``exempt`` (the LFT's fusion tokens, the reference's ``cls_token``), on
    biases and on 1-D weights; every other weight, the positional embedding included, is decayed."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or name.endswith("bias") or name.rsplit(".", 1)[-1] in exempt:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
