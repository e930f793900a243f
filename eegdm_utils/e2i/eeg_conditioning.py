"""The EEG side of the generator: DreamDiffusion's stages B and C and SGDM's guidance.

- **EEG tokens** (DreamDiffusion, stage B): the pretrained encoder's time tokens, projected
  to the generator's context width, are the context of its cross-attention.
- **Embedding alignment** (DreamDiffusion, stage C): a head maps the EEG encoding to the
  frozen image embedder's space; the loss 1 - cosine(head(EEG), embed(image)) is added to
  the diffusion loss, so the encoder learns what the image looks like to a CLIP-like model.
  SGDM trains the same map contrastively (:func:`contrastive_alignment_loss`, InfoNCE over the
  batch), which asks for the image itself rather than the direction of its class.
- **Semantic guidance** (SGDM, arXiv 2604.22649): a class posterior predicted from EEG
  turns into a soft prompt, the posterior-weighted mix of the pretrained generator's class
  prompts, appended to the context: the EEG speaks the language the generator was
  pretrained on.
- **Structural guidance** (SGDM): a G x G structure code of the image predicted from EEG,
  turned into a map by :mod:`.structure` (block means upsampled, or the decoder of a
  structurally supervised autoencoder), is fed through a ControlNet.

Each of these is a switch of :class:`ConditioningConfig`.

Shape letters: B batch, N EEG tokens, D encoder width, T context tokens, X context width,
E image-embedding width, K classes, G layout side, H, W image size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .structure import BlockMeans


@dataclass
class ConditioningConfig:
    eeg_tokens: bool = True  # DreamDiffusion: EEG tokens in the context
    semantic: bool = False  # SGDM semantic guidance: EEG class posterior -> soft class prompt
    structural: bool = False  # SGDM structural guidance: EEG layout -> ControlNet
    encoder_dim: int = 64
    n_tokens: int = 16
    context_dim: int = 64
    embed_dim: int = 64
    n_classes: int = 10
    layout_grid: int = 4
    image_size: int = 8
    readout_dropout: float = 0.1


@dataclass
class EEGReadout:
    tokens: torch.Tensor  # [B, N, D]
    image_embedding: torch.Tensor  # [B, E] (not normalised)
    class_logits: torch.Tensor  # [B, K]
    layout: torch.Tensor  # [B, G, G] the structure code


class EEGConditioner(nn.Module):
    """The EEG encoder plus its heads: context tokens, image embedding, class posterior, structure
    code. ``structure`` turns codes into ControlNet maps (:mod:`.structure`; held frozen; default
    block means of side ``layout_grid``)."""

    def __init__(self, encoder: nn.Module, config: ConditioningConfig, structure: nn.Module | None = None):
        super().__init__()
        self.config = config
        self.encoder = encoder
        if structure is None:
            structure = BlockMeans(config.layout_grid, config.image_size)
        self.structure = structure.requires_grad_(False)
        D, N, X, G = config.encoder_dim, config.n_tokens, config.context_dim, config.layout_grid
        self.to_context = nn.Sequential(nn.Linear(D, X), nn.LayerNorm(X))
        # every head reads all tokens: what happened when matters (P100 vs N170 vs P300)
        self.readout = nn.Sequential(nn.Flatten(), nn.LayerNorm(N * D), nn.Dropout(config.readout_dropout))
        self.align_head = nn.Sequential(nn.Linear(N * D, 2 * config.embed_dim), nn.GELU(),
                                        nn.Linear(2 * config.embed_dim, config.embed_dim))
        self.class_head = nn.Linear(N * D, config.n_classes)
        self.layout_head = nn.Linear(N * D, G * G)

    def forward(self, eeg: torch.Tensor) -> EEGReadout:
        tokens = self.encoder.encode(eeg)  # [B, N, D]
        flat = self.readout(tokens)  # [B, N * D]
        G = self.config.layout_grid
        return EEGReadout(tokens, self.align_head(flat), self.class_head(flat),
                          self.layout_head(flat).view(-1, G, G))

    def context(self, readout: EEGReadout, generator, semantic: bool = True, temperature: float = 1.0) -> torch.Tensor:
        """Cross-attention context [B, T, X]: EEG tokens and/or the soft class prompt.

        The soft prompt mixes the class prompts by the posterior ``softmax(logits / temperature)``
        (a temperature below 1 sharpens it). ``semantic=False`` switches the semantic branch
        off at sampling time: its tokens become null-prompt tokens, so the context keeps its length.
        """
        parts = []
        if self.config.eeg_tokens:
            parts.append(self.to_context(readout.tokens))  # [B, N, X]
        if self.config.semantic:
            B = len(readout.class_logits)
            parts.append(generator.soft_prompt((readout.class_logits / temperature).softmax(-1)) if semantic
                         else generator.null_context(B))  # [B, T_prompt, X]
        if not parts:
            raise ValueError("the conditioning has neither EEG tokens nor semantic guidance: nothing to attend to")
        return torch.cat(parts, dim=1)

    def control(self, readout: EEGReadout) -> torch.Tensor | None:
        """ControlNet input [B, 1, H, W] from the predicted structure code (structural guidance only)."""
        return self.structure(readout.layout) if self.config.structural else None


def alignment_loss(predicted_embedding: torch.Tensor, image_embedding: torch.Tensor) -> torch.Tensor:
    """DreamDiffusion's stage C: 1 - cosine(projection of the EEG encoding, image embedding)."""
    return 1.0 - F.cosine_similarity(predicted_embedding, image_embedding, dim=-1).mean()


def contrastive_alignment_loss(predicted_embedding: torch.Tensor, image_embedding: torch.Tensor,
                               image_ids: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """SGDM's EEG-image alignment: symmetric InfoNCE (CLIP's loss) between the EEG embeddings
    [B, E] and the image embeddings [B, E] of a batch. Other trials of the same image
    (``image_ids`` [B]) count as positives, not negatives; every other image is a negative, so
    the EEG embedding must single out its own image, not merely point toward its class."""
    a, b = F.normalize(predicted_embedding, dim=-1), F.normalize(image_embedding, dim=-1)
    logits = a @ b.T / temperature  # [B, B]
    positive = image_ids[:, None] == image_ids[None, :]  # [B, B]

    def direction(x: torch.Tensor) -> torch.Tensor:
        return (torch.logsumexp(x, dim=1) - torch.logsumexp(x.masked_fill(~positive, float("-inf")), dim=1)).mean()

    return 0.5 * (direction(logits) + direction(logits.T))
