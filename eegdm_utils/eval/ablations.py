"""The paper's ablations (Tables II-VI and VIII) as the reference's own scripts and configs run them
(jhpuah/EEGDM at 976a5f4), with a few controls of ours beside them (``Variant.ours``).

- **Pretraining and forward process (Table II)**: without mu-law and with the linear schedule the
  backbone is pretrained again (``conf/*/nolaw``, ``linear``); "- noiseless forward process" fine-tunes
  without a cache on fresh forward noise at every step (``conf/finetune/noise.yaml``, :class:`UncachedLFT`).
- **Diffusion step (Table III)**: the full model caches the clean companded signal told step 1
  (``fwd_with_noise: null``); steps 1, 2 and 3 are ``conf/cache/base_t0``, ``base_t1``, ``base_t2``:
  ``fwd_with_noise: False``, so the backbone sees sqrt(abar_t) x (the cache's ``input_mode="scaled"``)
  told step t = 0, 1, 2.
- **Latent and pooling (Table IV)**: gate or filter activity, std or mean over each 200-sample pool
  (``base_filters``, ``base_gatem``, ``base_filterm``).
- **Layers (Table V)**: the reference fine-tunes on contiguous ranges of backbone layers
  (``conf/finetune/base_firsthalf.yaml`` ... ``base_forthquarter.yaml``: ``start``/``end``) and,
  to keep the parameter count comparable, gives the LFT more final blocks: 22 instead of 8 with
  10 of the 20 layers, 28 with 5. :func:`layer_subset` names the ranges (and "every other", ours);
  :func:`comparable_final_blocks` gives the reference's counts for the paper configuration and, for
  other sizes, the count whose parameter total is closest to the full model's.
- **Fusion (Table VI)**: no fusion (every layer, pool and channel token into 34 final blocks) or the
  layer mean (35 blocks).
- **Sampling rate (Table VIII)**: ``src/extra/reduce_sampling.py`` companders each 200 Hz test window,
  resamples it with MNE to ``200 * rate`` Hz and runs the frozen backbone with the same ``rate``
  (``rate = fs / 200``); no retraining. The pools stay 200 samples, so 950 or 900 samples give four, and
  the LFT's fifth pool sees no data (:class:`UnfilledPools`;
  :func:`eegdm_utils.train.latent_cache.reduced_rate_latents`).

Shape letters: N windows, K channels, L samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.datasets import FaithfulDataset
from ..data.mulaw import staged_mu_law
from ..models.diffusion import add_noise
from ..models.lft import LatentFusionTransformer, LFTConfig
from ..train.latent_cache import pooled_activations
from ..train.recipes import fit_network

# the reference's final-block counts for layer subsets of its 20-layer backbone (its configs)
REFERENCE_FINAL_BLOCKS = {20: 8, 10: 22, 5: 28}
# and for its fusion ablations (conf/extra/no_fusion.yaml, mean_fusion.yaml)
REFERENCE_FUSION_FINAL_BLOCKS = {"none": 34, "mean": 35}


@dataclass(frozen=True)
class Variant:
    """One ablation: what it changes from the full model (an empty field changes nothing)."""

    table: str  # where the paper reports it ("ours" when it does not)
    pretrain: tuple = ()  # (field, value) overrides of the pretraining: ("mu_law", False), ("beta_schedule", "linear")
    cache: tuple = ()  # CacheConfig overrides: ("t", 0), ("input_mode", "scaled"), ("query", "filter"), ...
    layers: str = "all"  # a layer_subset name
    fusion: str = "layer"  # LFTConfig.fusion
    noise_injection: bool = False  # uncached fine-tuning with fresh forward noise (UncachedLFT)
    noise_epochs: bool = False  # at most notebook 60's noise_epochs epochs, as noise injection is trained
    test_fs: float | None = None  # test windows resampled to this rate (no retraining)
    ours: bool = False  # not in the paper: a control or an extra of this collection


def _step(t: int) -> Variant:
    # conf/cache/base_t<t>.yaml: fwd_with_noise False, diffusion_t t: the backbone sees sqrt(abar_t) x, told step t
    return Variant("III: diffusion step of the cache", cache=(("t", t), ("input_mode", "scaled")))


VARIANTS = {
    "full": Variant("full model"),
    "no_mulaw": Variant("II: pretraining and forward process", pretrain=(("mu_law", False),)),
    "linear_schedule": Variant("II: pretraining and forward process", pretrain=(("beta_schedule", "linear"),)),
    "noise_injection": Variant("II: pretraining and forward process", noise_injection=True, noise_epochs=True),
    # the cached full model with noise injection's epochs (its compute-matched control)
    "epoch_matched": Variant("II: pretraining and forward process", noise_epochs=True, ours=True),
    "step1": _step(0),
    "step2": _step(1),
    "step3": _step(2),
    "filter_std": Variant("IV: latent and pooling", cache=(("query", "filter"),)),
    "gate_mean": Variant("IV: latent and pooling", cache=(("reduction", "mean"),)),
    "filter_mean": Variant("IV: latent and pooling", cache=(("query", "filter"), ("reduction", "mean"))),
    "pool_100": Variant("IV: latent and pooling", cache=(("window", 100),), ours=True),
    "pool_1000": Variant("IV: latent and pooling", cache=(("window", 1000),), ours=True),
    "first_half": Variant("V: backbone layers", layers="first_half"),
    "second_half": Variant("V: backbone layers", layers="second_half"),
    "first_quarter": Variant("V: backbone layers", layers="first_quarter"),
    "second_quarter": Variant("V: backbone layers", layers="second_quarter"),
    "third_quarter": Variant("V: backbone layers", layers="third_quarter"),
    "fourth_quarter": Variant("V: backbone layers", layers="fourth_quarter"),
    "every_other": Variant("V: backbone layers", layers="every_other", ours=True),
    "no_fusion": Variant("VI: fusion", fusion="none"),
    "mean_fusion": Variant("VI: fusion", fusion="mean"),
    "rate_190": Variant("VIII: sampling rate", test_fs=190.0),
    "rate_180": Variant("VIII: sampling rate", test_fs=180.0),
}


def variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ValueError(f"unknown ablation variant {name!r}; choose from {', '.join(VARIANTS)}")
    return VARIANTS[name]


def ablation_lft_config(base: LFTConfig, v: Variant, n_final: int = 0) -> LFTConfig:
    """The LFT of variant ``v``: its layers and fusion, with the final-block count that keeps the
    parameter count comparable (the reference's counts for the paper configuration), or ``n_final``
    blocks when it is positive (a compute cap: the parameter count then differs from the full model's)."""
    config = LFTConfig(**{**vars(base), "fusion": v.fusion,
                          "layers": None if v.layers == "all" else layer_subset(v.layers, base.n_layer)})
    if n_final > 0:
        config.n_final = n_final
    elif v.layers != "all":
        config.n_final = comparable_final_blocks(base, config.layers)
    elif v.fusion != "layer":
        config.n_final = comparable_final_blocks(base, range(base.n_layer), fusion=v.fusion)
    return config


def layer_subset(name: str, n_layer: int) -> tuple[int, ...]:
    """Backbone layers of a named subset: ``first_half``, ``second_half``, ``first_quarter`` ...
    ``fourth_quarter`` (contiguous, as the reference's configs) or ``every_other`` (0, 2, 4, ...)."""
    quarters = {"first_quarter": 0, "second_quarter": 1, "third_quarter": 2, "fourth_quarter": 3}
    if name == "all":
        return tuple(range(n_layer))
    if name == "every_other":
        return tuple(range(0, n_layer, 2))
    if name in ("first_half", "second_half"):
        if n_layer < 2:
            raise ValueError(f"a backbone of {n_layer} layer has no halves")
        half = n_layer // 2
        return tuple(range(half)) if name == "first_half" else tuple(range(half, n_layer))
    if name in quarters:
        if n_layer % 4:
            raise ValueError(f"{n_layer} layers do not split into quarters")
        q = n_layer // 4
        return tuple(range(quarters[name] * q, (quarters[name] + 1) * q))
    raise ValueError(f"unknown layer subset {name!r}: all, first_half, second_half, first_quarter ... "
                     "fourth_quarter or every_other")


def _n_parameters(config: LFTConfig) -> int:
    return sum(p.numel() for p in LatentFusionTransformer(config).parameters())


def comparable_final_blocks(config: LFTConfig, layers, fusion: str = "layer") -> int:
    """Final self-attention blocks for an LFT reading only ``layers`` (with ``fusion``): the
    reference's count for the paper configuration (:data:`REFERENCE_FINAL_BLOCKS`,
    :data:`REFERENCE_FUSION_FINAL_BLOCKS`), otherwise the count whose parameter total is closest to
    that of ``config`` with every layer and layer fusion."""
    layers = tuple(layers)
    paper = LFTConfig()
    same_as_paper = all(getattr(config, f) == getattr(paper, f) for f in ("d_model", "n_layer", "n_pool", "n_tokens",
                                                                           "n_heads", "ff_mult", "n_final", "fusion"))
    if same_as_paper and fusion != "layer" and len(layers) == config.n_layer:
        return REFERENCE_FUSION_FINAL_BLOCKS[fusion]
    if same_as_paper and fusion == "layer" and len(layers) in REFERENCE_FINAL_BLOCKS:
        return REFERENCE_FINAL_BLOCKS[len(layers)]
    full = _n_parameters(LFTConfig(**{**vars(config), "layers": None, "fusion": "layer"}))
    chosen = {**vars(config), "layers": None if len(layers) == config.n_layer else layers, "fusion": fusion}
    base = _n_parameters(LFTConfig(**{**chosen, "n_final": 0}))
    per_block = _n_parameters(LFTConfig(**{**chosen, "n_final": 1})) - base
    return max(config.n_final, int(round((full - base) / per_block)))


class UncachedLFT(torch.nn.Module):
    """The reference's noise-injection fine-tuning (Table II; ``fwd_with_noise: True`` in
    ``conf/finetune/noise.yaml``): no cache. Every training step runs the raw windows through the
    frozen backbone after a **fresh** forward-noise draw at step ``t`` (x_t = sqrt(abar_t) x +
    sqrt(1 - abar_t) eps); in eval mode (validation, test: the reference's EMA path) the noise is
    zero, so the backbone sees sqrt(abar_t) x (the cache's ``input_mode="scaled"``). Gradients reach
    the LFT only.

    ``forward(x [B, K, L] in store units (missing channels 0), present [B, K]) -> logits [B, C]``."""

    def __init__(self, backbone, lft, scheduler, t: int = 1, mu_law: bool = True, query: str = "gate",
                 reduction: str = "std", window: int = 200):
        super().__init__()
        self.backbone = backbone.eval().requires_grad_(False)
        self.lft, self.scheduler, self.t, self.mu_law = lft, scheduler, t, mu_law
        self.query, self.reduction, self.window = query, reduction, window

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()  # frozen: its own mode never changes
        return self

    def latents(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """[B, K, L], [B, K] -> [B, n, P, K, H] (0 where a channel is missing)."""

        pairs = present.bool().nonzero()  # [M, 2] (window, channel)
        seq = x[pairs[:, 0], pairs[:, 1]][:, None]  # [M, 1, L]
        seq = staged_mu_law(seq) if self.mu_law else seq
        t = torch.full((len(seq),), self.t, dtype=torch.long, device=seq.device)
        noise = torch.randn_like(seq) if self.training else torch.zeros_like(seq)
        with torch.no_grad():
            pooled = pooled_activations(self.backbone, add_noise(self.scheduler, seq, noise, t), t, pairs[:, 1],
                                        self.query, self.window, self.reduction)  # [M, n, P, H]
        B, K = present.shape
        out = pooled.new_zeros(B, pooled.shape[1], pooled.shape[2], K, pooled.shape[3])
        out[pairs[:, 0], :, :, pairs[:, 1]] = pooled
        return out

    def forward(self, x: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        if present is None:
            present = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        return self.lft(self.latents(x, present), present)


class UnfilledPools(torch.nn.Module):
    """A trained LFT tested on latents with fewer pools than it was trained on, as the reference's Table VIII
    does (windows resampled to 950 or 900 samples give 4 pools of 200): the fifth pool's fusion tokens never
    see data and go into the final blocks as trained. ``forward(latents [B, n, P, K, H], present) -> logits``."""

    def __init__(self, lft: LatentFusionTransformer):
        super().__init__()
        self.lft = lft

    def forward(self, latents: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        return self.lft(latents, present, unfilled_pools=True)


def fit_uncached_lft(backbone, statistics, view, config: LFTConfig, finetune, folder, scale, subset=None,
                     **backbone_pass):
    """The noise-injection variant's fit: an LFT whose token statistics come from ``statistics`` (the full
    model's cache: clean input, the same backbone), wrapped in :class:`UncachedLFT` (``backbone_pass``:
    its scheduler, t, mu_law, query, reduction, window) and fitted on the raw windows with the recipe of
    :func:`eegdm_utils.train.recipes.fit_lft`. Returns (EMA model in eval mode, epochs run, best
    validation kappa)."""
    lft = LatentFusionTransformer(config)
    lft.fit_token_statistics(statistics.latents("train"), view.present("train"))
    net = UncachedLFT(backbone, lft, **backbone_pass)
    return fit_network(net, FaithfulDataset(view, "train", False, subset), FaithfulDataset(view, "val", False), finetune,
                       folder, config.n_classes, scale)
