"""The two-stage baseline: ridge regression from EEG to the image embedding, then the
generator conditioned on the predicted embedding.

The generator's adapter (:class:`EmbeddingPrompt`) is trained on images alone (the true
embedding of each training image as its context, as an unCLIP-style decoder), with the
same freezing as the EEG fine-tuning; at test time the embedding comes from ridge
regression on the EEG. Nothing but a linear map connects EEG and image.

Shape letters: B batch, E embedding width, T context tokens, X context width.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class EmbeddingPrompt(nn.Module):
    """The two-stage baseline's adapter: an image embedding [B, E] -> context [B, T, X]."""

    def __init__(self, embed_dim: int, tokens: int, context_dim: int):
        super().__init__()
        self.tokens, self.context_dim = tokens, context_dim
        self.project = nn.Sequential(nn.Linear(embed_dim, tokens * context_dim), nn.LayerNorm(tokens * context_dim))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.project(F.normalize(embedding, dim=-1)).view(-1, self.tokens, self.context_dim)


def fit_ridge(features_train, targets_train, features_val, targets_val, alphas=(1.0e1, 1.0e2, 1.0e3, 1.0e4, 1.0e5)):
    """Ridge regression from EEG features to image embeddings, its penalty chosen on
    validation by the mean cosine of prediction and target. Returns (model, alpha, scores)."""
    import numpy as np
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def mean_cosine(a, b):
        a = a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-12)
        b = b / (np.linalg.norm(b, axis=1, keepdims=True) + 1e-12)
        return float((a * b).sum(1).mean())

    scores, models = {}, {}
    for alpha in alphas:
        models[alpha] = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(features_train, targets_train)
        scores[alpha] = mean_cosine(models[alpha].predict(features_val), targets_val)
    best = max(scores, key=scores.get)
    return models[best], best, scores
