"""Fine-tuning the EEGFoundation classifier with the project's recipe (``train.finetuning.fit_classifier``).

The encoder is frozen, so each channel's [CLS] embedding is computed once per window
(``EmbeddedLines`` carries it beside the signal) instead of at every step of every epoch.

The release trains its head with lr 1e-4 and weight decay 0.1; here those two values go
into the project's fine-tuning recipe (AdamW, OneCycle, EMA, early stopping on validation
kappa). The pretrained encoder is frozen, so only the head's parameters are in the
optimizer groups (``lft.no_decay_groups`` skips parameters that need no gradient).

Shape letters: B batch, K channels, L samples, C classes.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict

import numpy as np
import torch

from ..data.datasets import FaithfulDataset
from ..models.lft import no_decay_groups
from ..train.finetuning import FinetuneConfig, fit_classifier
from .model import FoundationClassifier


class EmbeddedLines(FaithfulDataset):
    """``FaithfulDataset`` items whose input is the pair (signal [K, L], channel embeddings [K, H]),
    the embeddings of the split computed once (``model.split_embeddings``) for a frozen encoder."""

    def __init__(self, store, split: str, embeddings: np.ndarray, indices: np.ndarray | None = None):
        super().__init__(store, split, mu_law=False, indices=indices)
        if embeddings.shape[:2] != self.windows.shape[:2]:
            raise ValueError(f"embeddings of shape {embeddings.shape} are not those of the {split} windows "
                             f"{self.windows.shape[:2]}")
        self.embeddings = embeddings

    def _input(self, w: int):
        return super()._input(w), torch.from_numpy(self.embeddings[w])


def predict_windows(model, embedded: EmbeddedLines, batch: int = 64) -> np.ndarray:
    """The predicted class of every window of ``embedded``'s split (not only its labelled lines): [U],
    the input of ``train.finetuning.evaluate_lines``."""
    return window_scores(model, embedded.windows, embedded.embeddings, embedded.present, batch).argmax(-1)


def fit_foundation_classifier(net, train_set, val_set, config: FinetuneConfig, out_dir, n_classes: int, scale=None):
    """``fit_classifier`` on a ``FoundationClassifier`` (items: x [K, L], present [K], label, weight);
    returns (module with the best-kappa EMA weights, epochs run, checkpoint callback)."""
    # the frozen encoder is in eval mode on purpose (``FoundationClassifier.train``)
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")
    groups = no_decay_groups(net, config.optim.weight_decay)
    describe = {"model": "foundation", "head": asdict(net.head.config)}
    return fit_classifier(net, train_set, val_set, config, groups, out_dir, n_classes, scale=scale, describe=describe)


@torch.no_grad()
def window_scores(model, windows: np.ndarray, embeddings: np.ndarray, present: np.ndarray, batch: int = 64) -> np.ndarray:
    """Class scores of every window ([U, C]) from its signal [U, K, L] (NaN for a missing channel) and
    its channel embeddings [U, K, H]."""
    out = []
    for i in range(0, len(embeddings), batch):
        x = torch.from_numpy(np.nan_to_num(np.asarray(windows[i:i + batch], dtype=np.float32)))
        out.append(model((x, torch.from_numpy(embeddings[i:i + batch])), torch.from_numpy(present[i:i + batch])).numpy())
    return np.concatenate(out)


def fit_foundation_head(encoder, tokenizer, head, view, embeddings: dict, finetune: FinetuneConfig, out_dir, scale,
                        samples: int | None = None):
    """The released head on a frozen encoder, trained on ``view``'s training split with the channel
    embeddings of each split (``embeddings[split]``: [U, K, H], in ``view``'s window order); returns
    (best validation kappa, class scores of every test window [U, C])."""

    sets = {s: EmbeddedLines(view, s, embeddings[s]) for s in ("train", "val")}
    net = FoundationClassifier(encoder, tokenizer, head, samples=samples)
    module, _, best = fit_foundation_classifier(net, sets["train"], sets["val"], finetune, out_dir, head.n_classes, scale)
    scores = window_scores(module.ema.ema_model.eval(), view.windows("test"), embeddings["test"], view.present("test"))
    return float(best.best_model_score), scores
