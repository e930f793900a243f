"""EEGFoundation's models: a RoFormer encoder over single-channel token sequences, the
[CLS] embedding of every channel, and the downstream classifier.

Encoder: ``transformers.RoFormerForMaskedLM`` built from a config (never downloaded),
vocabulary 2006, rotary position encoding on queries and keys (``rotary_value=False``).
The paper size is hidden 768, 12 layers, 12 heads, intermediate 3072 (``paper_config``);
the release pretrains on 2,000 bare amplitude ids and frames [CLS] + the first 1,998 + [SEP]
when it extracts embeddings, so ``max_position_embeddings`` is 2000 there (here windows are
1,000 samples: 1000 in the small default). The position table is the frozen sinusoid the
rotary encoding reads, not learned.

Channel embedding: the encoder's last hidden state at [CLS], one vector per channel
(``embedding_sequences``: the release's ``test_model_embedding.py`` framing).

Downstream head (the release's ``PAttnClassifier``): each channel divided by its RMS over the
window, replication-padded on the right by one stride, cut into patches (200 samples, stride 100:
10 for a 5-s window), Linear(patch -> D) plus a projection of the channel's embedding (x 0.01),
bias-free multi-head self-attention over the patches of each channel (residual, LayerNorm), then
flatten -> Linear(D) -> dropout 0.5 -> SiLU -> dropout 0.8 -> Linear(C). Channels meet only in
that final classifier. ``head="fusion"`` is the paper's
cross-channel attention instead: at each patch position the channels attend to each other,
their mean over present channels goes to the same classifier.

Missing channels are never tokenized; their embedding is zero, their signal is zeroed,
they are masked out of the fusion attention and their features are zeroed before the
classifier, so their values cannot move the output.

Shape letters: B batch, K channels, L samples, S sequence length, H encoder width,
N patches, P patch length, D head width, C classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import RoFormerConfig, RoFormerForMaskedLM
from transformers.models.roformer.modeling_roformer import RoFormerSelfAttention

from .tokenizer import PAD_ID, VOCAB_SIZE, embedding_sequences


@dataclass
class EncoderConfig:
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 256
    max_positions: int = 1000  # 1,000 samples (5 s at 200 Hz): the sequences are as long as the window
    dropout: float = 0.1  # hidden states
    attention_dropout: float = 0.0  # on the attention probabilities (0.1 in the release; any > 0 makes the fused
    #                                 attention fall back to the score matrix: ~3x slower training on a CPU)


def paper_config() -> EncoderConfig:
    """The paper's encoder: 768 wide, 12 layers, 12 heads, 3072; the release's 2,000 positions."""
    return EncoderConfig(hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072, max_positions=2000,
                         attention_dropout=0.1)


def roformer_config(config: EncoderConfig) -> RoFormerConfig:
    return RoFormerConfig(
        vocab_size=VOCAB_SIZE, embedding_size=config.hidden_size, hidden_size=config.hidden_size,
        num_hidden_layers=config.num_layers, num_attention_heads=config.num_heads,
        intermediate_size=config.intermediate_size, max_position_embeddings=config.max_positions,
        hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.attention_dropout,
        pad_token_id=PAD_ID, rotary_value=False)


class FusedRoFormerSelfAttention(RoFormerSelfAttention):
    """RoFormer's self-attention, with the same rotary queries and keys, through PyTorch's fused
    ``scaled_dot_product_attention`` instead of the eager score matrix: the same function
    (checked in the tests), several times faster on 1,000-token sequences and without the
    [B, heads, S, S] tensor in memory. Encoder self-attention only (no cache, no cross-attention)."""

    def forward(self, hidden_states, attention_mask=None, sinusoidal_pos=None, encoder_hidden_states=None,
                cache=None, output_attentions=False, **kwargs):
        if encoder_hidden_states is not None or cache is not None or output_attentions:
            return super().forward(hidden_states, attention_mask, sinusoidal_pos, encoder_hidden_states, cache,
                                   output_attentions, **kwargs)
        shape = (*hidden_states.shape[:-1], -1, self.attention_head_size)
        q, k, v = (proj(hidden_states).view(shape).transpose(1, 2) for proj in (self.query, self.key, self.value))
        if sinusoidal_pos is not None:
            if self.rotary_value:
                q, k, v = self.apply_rotary_position_embeddings(sinusoidal_pos, q, k, v)
            else:
                q, k = self.apply_rotary_position_embeddings(sinusoidal_pos, q, k)
        if attention_mask is not None:
            attention_mask = attention_mask.to(q.dtype)  # additive [B, 1, 1, S]: 0 kept, very negative masked
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask,
                                                 dropout_p=self.dropout.p if self.training else 0.0)  # [B, h, S, d]
        return context.transpose(1, 2).reshape(*hidden_states.shape[:-1], self.all_head_size), None


def build_encoder(config: EncoderConfig | None = None, fused: bool = True) -> RoFormerForMaskedLM:
    """A freshly initialised RoFormer masked-LM (no weights are downloaded); ``fused`` attention
    by default (``FusedRoFormerSelfAttention``; the parameters are the same either way)."""
    model = RoFormerForMaskedLM(roformer_config(config if config is not None else EncoderConfig()))
    if fused:
        for layer in model.roformer.encoder.layer:
            layer.attention.self.__class__ = FusedRoFormerSelfAttention
    return model


def centre_crop(x: torch.Tensor, samples: int | None) -> torch.Tensor:
    """The middle ``samples`` of the last axis (the whole of it for None); an error if longer."""
    L = x.shape[-1]
    if samples is None or samples == L:
        return x
    if not 0 < samples <= L:
        raise ValueError(f"a sequence of {samples} samples does not fit in windows of {L}")
    start = (L - samples) // 2
    return x[..., start:start + samples]


@torch.no_grad()
def channel_embeddings(encoder, tokenizer, x: torch.Tensor, present: torch.Tensor | None = None,
                       chunk: int = 256, samples: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """[CLS] embeddings of every present channel: x [B, K, L], present [B, K] ->
    (embeddings [B, K, H], present [B, K] bool). Missing channels (present False; NaN
    when ``present`` is not given) are not tokenized and get a zero vector. ``samples``:
    tokenize the middle that many samples of each window (the encoder's sequence length)."""
    base = getattr(encoder, "roformer", encoder)  # a masked-LM or its bare encoder
    present = ~torch.isnan(x).any(-1) if present is None else present.bool()  # [B, K]
    B, K, _ = x.shape
    out = x.new_zeros(B, K, base.config.hidden_size)  # [B, K, H]
    ids, attention = embedding_sequences(tokenizer.encode(centre_crop(x[present], samples)))  # [M, L] each
    parts = [base(input_ids=ids[i:i + chunk], attention_mask=attention[i:i + chunk]).last_hidden_state[:, 0]
             for i in range(0, len(ids), chunk)]  # chunks bound the [chunk, heads, S, S] attention
    if parts:
        out[present] = torch.cat(parts).to(out.dtype)  # [M, H]
    return out, present


def n_patches(length: int, patch: int, stride: int) -> int:
    """Patches of a window of ``length`` samples after the release's right padding by one stride."""
    if length + stride < patch:
        raise ValueError(f"a window of {length} samples padded by {stride} holds no patch of {patch}")
    return (length + stride - patch) // stride + 1


def patchify(x: torch.Tensor, patch: int, stride: int) -> torch.Tensor:
    """[B, K, L] -> [B, K, N, P]: the release's ``ReplicationPad1d((0, stride))`` (the last sample repeated
    ``stride`` times on the right), then patches of ``patch`` samples every ``stride``."""
    return F.pad(x, (0, stride), mode="replicate").unfold(-1, patch, stride)  # [B, K, N, P]


def rms_normalise(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Each channel over the window divided by its root mean square (the release's ``rms_norm``): [..., L]."""
    return x / torch.sqrt(x.square().mean(-1, keepdim=True) + eps)


class PatchAttention(nn.Module):
    """The release's ``MultiHeadAttention``: bias-free query, key, value and output projections, softmax
    attention with dropout on the probabilities, dropout on the output, the residual, then LayerNorm
    (eps 1e-6). [B, N, D] -> [B, N, D]."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.1):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} does not split into {n_heads} heads")
        self.n_heads, self.dropout = n_heads, dropout
        self.q, self.k, self.v, self.out = (nn.Linear(d_model, d_model, bias=False) for _ in range(4))
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(d_model, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        q, k, v = (p(x).view(B, N, self.n_heads, D // self.n_heads).transpose(1, 2) for p in (self.q, self.k, self.v))
        dropout = self.dropout if self.training else 0.0
        h = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)  # [B, heads, N, d]
        return self.norm(x + self.drop(self.out(h.transpose(1, 2).reshape(B, N, D))))


@dataclass
class HeadConfig:
    n_channels: int = 22
    n_samples: int = 1000
    n_classes: int = 6
    patch: int = 200
    stride: int = 100
    d_model: int = 512
    n_heads: int = 8
    d_hidden: int = 512  # the classifier's hidden layer (the release: d_model)
    embedding_scale: float = 0.01  # the channel embeddings are multiplied by this (the release's TUAB script)
    head: str = "release"  # "release" (channels meet in the classifier) | "fusion" (cross-channel attention)

    def __post_init__(self):
        if self.head not in ("release", "fusion"):
            raise ValueError(f"head must be 'release' or 'fusion', not {self.head!r}")


class FoundationHead(nn.Module):
    """The release's ``PAttnClassifier`` (``Downstream/PAttn.py``, as its TUAB script runs it): each channel
    divided by its RMS, padded by one stride and cut into patches, Linear(patch -> D) plus the projected
    channel embedding (scaled by ``embedding_scale``), :class:`PatchAttention` over the patches of each
    channel, then flatten -> Linear(D) -> dropout 0.5 -> SiLU -> dropout 0.8 -> Linear(C).
    (x [B, K, L], present [B, K], embeddings [B, K, H]) -> logits [B, C]."""

    def __init__(self, config: HeadConfig, d_embed: int):
        super().__init__()
        c = self.config = config
        N, D = n_patches(c.n_samples, c.patch, c.stride), c.d_model
        self.patch_embed = nn.Linear(c.patch, D)
        self.channel_proj = nn.Linear(d_embed, D)
        self.patch_attn = PatchAttention(D, c.n_heads)
        self.channel_attn = nn.MultiheadAttention(D, c.n_heads, batch_first=True) if c.head == "fusion" else None
        width = (c.n_channels if c.head == "release" else 1) * N * D
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(width, c.d_hidden), nn.Dropout(0.5), nn.SiLU(),
                                        nn.Dropout(0.8), nn.Linear(c.d_hidden, c.n_classes))

    def forward(self, x: torch.Tensor, present: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        c = self.config
        missing = ~present.bool()  # [B, K]
        x = rms_normalise(x.masked_fill(missing[..., None], 0.0))  # NaN of a missing channel must not reach attention
        B, K, L = x.shape
        h = self.patch_embed(patchify(x, c.patch, c.stride))  # [B, K, N, D]
        h = h + self.channel_proj(embeddings * c.embedding_scale)[:, :, None]  # [B, K, N, D]
        N, D = h.shape[2], h.shape[3]
        h = self.patch_attn(h.reshape(B * K, N, D)).reshape(B, K, N, D)  # each channel on its own
        h = h.masked_fill(missing[:, :, None, None], 0.0)
        if self.channel_attn is not None:
            h = self.fuse(h, missing)  # [B, N, D]
        return self.classifier(h)  # [B, C]

    def fuse(self, h: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        """Attention across the channels at each patch position, then their mean over present
        channels: [B, K, N, D] -> [B, N, D]."""
        B, K, N, D = h.shape
        t = h.transpose(1, 2).reshape(B * N, K, D)  # channels of one patch position
        mask = missing.repeat_interleave(N, dim=0)  # [B*N, K]
        t = t + self.channel_attn(t, t, t, key_padding_mask=mask, need_weights=False)[0]
        t = t.reshape(B, N, K, D).masked_fill(missing[:, None, :, None], 0.0)
        count = (~missing).sum(1).clamp_min(1).to(t.dtype)  # [B]
        return t.sum(2) / count[:, None, None]  # [B, N, D]


class FoundationClassifier(nn.Module):
    """The frozen pretrained encoder and the head: ``net(x [B, K, L], present [B, K]) -> logits [B, C]``.

    The encoder stays in eval mode and out of the optimizer; the embeddings of a batch are
    computed under ``no_grad`` in ``chunk``-sized groups of channels."""

    def __init__(self, encoder, tokenizer, config: HeadConfig | None = None, chunk: int = 256,
                 samples: int | None = None):
        super().__init__()
        self.encoder = encoder.requires_grad_(False).eval()
        self.tokenizer, self.chunk, self.samples = tokenizer, chunk, samples
        self.head = FoundationHead(config if config is not None else HeadConfig(), getattr(encoder, "roformer", encoder).config.hidden_size)

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()  # no dropout in the frozen encoder: an embedding is a function of the channel
        return self

    def forward(self, x, present: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, K, L], or the pair (x, embeddings [B, K, H]) when the embeddings are computed
        already (``split_embeddings``: the encoder is frozen, so they are the same numbers)."""
        if isinstance(x, (tuple, list)):
            x, embeddings = x
            present = ~torch.isnan(x).any(-1) if present is None else present.bool()
        else:
            embeddings, present = channel_embeddings(self.encoder, self.tokenizer, x, present, self.chunk, self.samples)
        return self.head(x, present, embeddings)  # [B, C]


def split_embeddings(encoder, tokenizer, windows, present, samples: int | None = None, batch_windows: int = 16,
                     progress=None) -> np.ndarray:
    """[CLS] embeddings of every present channel of every window of a split, computed once:
    windows [U, K, L] (array or memmap; missing channels NaN), present [U, K] -> [U, K, H] float32
    (zeros for missing channels)."""
    base = getattr(encoder, "roformer", encoder)
    out = np.zeros((len(windows), windows.shape[1], base.config.hidden_size), dtype=np.float32)
    starts = range(0, len(windows), batch_windows)
    for start in (progress(starts, desc="embeddings") if progress else starts):
        x = torch.from_numpy(np.array(windows[start:start + batch_windows], dtype=np.float32))  # [b, K, L] (a copy)
        keep = torch.from_numpy(np.asarray(present[start:start + batch_windows], dtype=bool))  # [b, K]
        out[start:start + len(x)] = channel_embeddings(encoder, tokenizer, x, keep, samples=samples)[0].numpy()
    return out
