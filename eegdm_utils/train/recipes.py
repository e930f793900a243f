"""The fine-tuning recipes of the classification notebooks, written once: the LFT on a latent cache and
EEGNet on raw windows, each fitted with :func:`eegdm_utils.train.finetuning.fit_classifier` (AdamW without
decay on the fusion tokens, biases and 1-D weights, OneCycle, EMA, early stopping on validation kappa) and
returned as its EMA model. Notebooks 40, 60 and 95 use them (60's uncached noise-injection variant through
:func:`fit_network`, in :func:`eegdm_utils.eval.ablations.fit_uncached_lft`); the caller seeds before
calling, so that the initial weights depend on the seed alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.datasets import FaithfulDataset, LatentLines
from ..models.eegnet import EEGNet, EEGNetConfig
from ..models.lft import LatentFusionTransformer, LFTConfig, no_decay_groups
from .finetuning import FinetuneConfig, fit_classifier


def fit_network(net, train_set, val_set, finetune: FinetuneConfig, folder: str | Path, n_classes: int, scale):
    """Fit ``net`` with the recipe (no decay on the fusion tokens, biases and 1-D weights) and return (EMA model in
    eval mode, epochs run, best validation kappa)."""
    module, epochs, best = fit_classifier(net, train_set, val_set, finetune, no_decay_groups(net, finetune.optim.weight_decay),
                                          folder, n_classes, scale)
    return module.ema.ema_model.eval(), epochs, float(best.best_model_score)


def fit_lft(cache, view, config: LFTConfig, finetune: FinetuneConfig, folder: str | Path, scale,
            subset: np.ndarray | None = None):
    """Train an LFT on ``cache`` (a latent cache over ``view``'s windows; ``subset``: the training lines
    to use) and return (EMA model in eval mode, epochs run, best validation kappa)."""
    net = LatentFusionTransformer(config)
    net.fit_token_statistics(cache.latents("train"), view.present("train"))  # the "standard" token norms only
    return fit_network(net, LatentLines(cache, view, "train", subset), LatentLines(cache, view, "val"), finetune,
                       folder, config.n_classes, scale)


def fit_eegnet(view, n_classes: int, mu_law: bool, finetune: FinetuneConfig, folder: str | Path, scale,
               subset: np.ndarray | None = None):
    """Train EEGNet on ``view``'s raw 22-channel windows (mu-law companded when ``mu_law``, as the backbone
    sees them) and return (EMA model in eval mode, epochs run, best validation kappa)."""
    net = EEGNet(EEGNetConfig(n_channels=22, n_samples=view.window_samples, n_classes=n_classes))
    return fit_network(net, FaithfulDataset(view, "train", mu_law, subset), FaithfulDataset(view, "val", mu_law),
                       finetune, folder, n_classes, scale)
