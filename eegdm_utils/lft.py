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
small (at most about 0.5) and of very different scale from layer to layer. They are
layer-normalised over H without learnable parameters before anything attends to them
(``channel_norm``; the parameter count is unchanged). Without it, on the simulated corpus at
the default scale, the LFT reached a validation kappa of 0.40 with all labels and collapsed
to one class with 10% of them, where a standardised linear probe on the same latents reaches
0.48; with it, 0.67 and 0.62. ``channel_norm=False`` gives the literal variant.

Ablation options: ``fusion="none"`` (no fusion blocks: every (layer, pool, channel) token
goes to the final blocks, with a positional embedding), ``fusion="mean"`` (the layers'
activity averaged into one layer, fused by one block), ``layers`` (a subset of backbone
layers), and ``n_pool`` (other window lengths or sampling rates).

Shape letters: B batch, n layers, P pools, K channels, T fusion tokens, H width, C classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


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
    channel_norm: bool = True  # layer-normalise the channel tokens (no parameters) before use

    def __post_init__(self):
        if self.fusion not in ("layer", "mean", "none"):
            raise ValueError(f"fusion must be layer, mean or none, not {self.fusion!r}")
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
    def __init__(self, config: LFTConfig = LFTConfig()):
        super().__init__()
        self.config = c = config
        H = c.d_model
        if c.fusion == "none":
            n_positions = c.used_layers * c.n_pool * c.n_channels
            self.fusion_blocks = nn.ModuleList()
            self.fusion_tokens = None
        else:
            n_fusion = 1 if c.fusion == "mean" else c.used_layers
            n_positions = c.n_pool * c.n_tokens
            self.fusion_blocks = nn.ModuleList(FusionBlock(H, c.n_heads, c.ff_mult, c.dropout) for _ in range(n_fusion))
            self.fusion_tokens = nn.Parameter(torch.randn(c.n_pool, c.n_tokens, H) * 0.02)  # [P, T, H]
        self.position = nn.Parameter(torch.randn(n_positions, H) * 0.02)
        self.final_blocks = nn.ModuleList(SelfAttentionBlock(H, c.n_heads, c.ff_mult, c.dropout) for _ in range(c.n_final))
        self.head = nn.Linear(H, c.n_classes)

    def forward(self, latents: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        """latents [B, n, P, K, H] (missing channels may hold anything), present [B, K] bool -> logits [B, C]."""
        c = self.config
        if c.layers is not None:
            latents = latents[:, list(c.layers)]
        B, n, P, K, H = latents.shape
        if P != c.n_pool or K != c.n_channels or H != c.d_model:
            raise ValueError(f"latents of shape {tuple(latents.shape)} do not fit the LFT "
                             f"(pools {c.n_pool}, channels {c.n_channels}, width {c.d_model})")
        missing = None if present is None else ~present.bool()  # [B, K]
        if c.channel_norm:
            latents = nn.functional.layer_norm(latents, (H,))
        if missing is not None:
            latents = latents.masked_fill(missing[:, None, None, :, None], 0.0)
        if c.fusion == "none":
            tokens = latents.reshape(B, n * P * K, H)  # every (layer, pool, channel) token
        else:
            if c.fusion == "mean":
                latents = latents.mean(dim=1, keepdim=True)  # [B, 1, P, K, H]
            tokens = self.fuse(latents, missing)  # [B, P*T, H]
        tokens = tokens + self.position
        for block in self.final_blocks:
            tokens = block(tokens)
        return self.head(tokens.mean(dim=1))  # [B, C]

    def fuse(self, latents: torch.Tensor, missing: torch.Tensor | None) -> torch.Tensor:
        """The fusion step: pools folded into the batch, tokens carried through the layers."""
        B, n, P, K, H = latents.shape
        T = self.config.n_tokens
        tokens = self.fusion_tokens.expand(B, P, T, H).reshape(B * P, T, H)  # separate tokens per pool
        mask = None if missing is None else missing.repeat_interleave(P, dim=0)  # [B*P, K]
        for i, block in enumerate(self.fusion_blocks):
            channels = latents[:, i].reshape(B * P, K, H)  # layer i's channel tokens, per pool
            tokens = block(tokens, channels, mask)
        return tokens.reshape(B, P * T, H)


def no_decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: no weight decay on tokens, positional embeddings, biases and 1-D weights."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or name.endswith("bias") or "token" in name or "position" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
