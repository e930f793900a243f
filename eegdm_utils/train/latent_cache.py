"""The latent cache of EEGDM: what the frozen SSMDP "sees" in each window.

Every faithful window [22, L] runs through the frozen EMA denoiser as 22 single-channel
passes, each conditioned on its channel index and a small diffusion step t (default 1),
with the clean (mu-law companded) signal as input. The ``gate`` activations (after the
sigmoid; option ``filter``) of every block are reduced by their standard deviation (option:
mean) over non-overlapping 200-sample (1-s) windows: one (n_layer, n_pool, 22, d_model)
array per window. Lines of the faithful product that share a window share its latents.

The cache holds training and validation windows only: the test split is always computed
from the raw windows through the backbone at evaluation time. Latents are stored as
float16 (or float32) memory-mapped arrays with metadata that fine-tuning checks. Missing
channels are NaN. A build shows progress and resumes where it stopped.

Also here: the test split's latents (computed from the raw windows, and kept on disk per
backbone and settings), latents held in memory for a fold of real EEG, the four (query,
reduction) variants from one pass, and the reference's reduced-sampling-rate latents (Table VIII).

Shape letters: W windows, K channels, L samples, M single-channel sequences, n layers,
P pools, H d_model.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.files import atomic_write_json, read_json, stored_array
from ..core.identity import differences, fingerprint, weights_sha256
from ..data.mulaw import staged_mu_law
from ..data.store import EEGStore
from ..models.diffusion import add_noise, ddpm_scheduler
from ..models.s4d import reference_rate

CACHE_SPLITS = ("train", "val")


class CacheMismatch(ValueError):
    """A cache built with other settings than the ones asked for."""


@dataclass
class CacheConfig:
    t: int = 1  # diffusion step the backbone is told
    input_mode: str = "clean"  # "clean" | "scaled" (sqrt(abar_t) x) | "noise" (forward noise at t)
    query: str = "gate"  # "gate" | "filter"
    reduction: str = "std"  # "std" | "mean" over each pool window
    window: int = 200  # samples per pool (1 s at 200 Hz)
    dtype: str = "float16"  # storage type of the latents
    noise_seed: int = 0  # input_mode "noise" only
    batch_windows: int = 8  # windows per backbone call (x 22 sequences)

    def __post_init__(self):
        if self.input_mode not in ("clean", "scaled", "noise"):
            raise ValueError(f"input_mode must be clean, scaled or noise, not {self.input_mode!r}")
        if self.query not in ("gate", "filter"):
            raise ValueError(f"query must be gate or filter, not {self.query!r}")
        if self.reduction not in ("std", "mean"):
            raise ValueError(f"reduction must be std or mean, not {self.reduction!r}")
        if self.dtype not in ("float16", "float32"):
            raise ValueError(f"dtype must be float16 or float32, not {self.dtype!r}")


def block_activity(backbone, x: torch.Tensor, t: torch.Tensor, channel: torch.Tensor, rate: float = 1.0):
    """Yield each block's (gate, filter) activity [M, L, H] for inputs [M, 1, L], one block at a time
    (the skip outputs, which only the denoiser's output head reads, are not computed)."""
    cond = backbone.condition(t, channel)  # [M, 1, D]
    h = backbone.in_layer(x.transpose(1, 2))  # [M, L, H]
    for block in backbone.blocks:
        h, _, gate, filt = block(h, cond, rate, skip=False)
        yield gate, filt


def sample_std(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x.std(dim)`` (Bessel-corrected), in two vectorised passes: several times faster than
    torch.std on CPU, equal to float rounding."""
    d = x - x.mean(dim, keepdim=True)
    return d.square_().sum(dim).div_(x.shape[dim] - 1).sqrt_()


@torch.no_grad()
def pooled_activations(backbone, x: torch.Tensor, t: torch.Tensor, channel: torch.Tensor, query: str,
                       window: int, reduction: str, rate: float = 1.0) -> torch.Tensor:
    """[M, 1, L] -> [M, n_layer, P, H]: each block's activations reduced over P = L // window
    consecutive pool windows; the last L % window samples, if any, are in no pool (as the
    reference's ``unfold``; resampled windows need not be a whole number of pools).

    Reduced block by block, so the full [M, n_layer, L, H] activity is never held."""
    L = x.shape[-1]
    P = L // window
    if P == 0:
        raise ValueError(f"a window of {L} samples is shorter than one pool of {window}")
    pooled = []
    for gate, filt in block_activity(backbone, x, t, channel, rate):
        act = (gate if query == "gate" else filt)[:, :P * window].unflatten(1, (P, window))  # [M, P, window, H]
        pooled.append(sample_std(act, 2) if reduction == "std" else act.mean(dim=2))  # [M, P, H]
    return torch.stack(pooled, dim=1)  # [M, n_layer, P, H]


def backbone_inputs(x: torch.Tensor, config: CacheConfig, scheduler, mu_law: bool, index0: int = 0) -> torch.Tensor:
    """Store units [M, 1, L] -> what the backbone is given (mu-law, then the input mode)."""
    x = staged_mu_law(x) if mu_law else x
    t = torch.full((len(x),), config.t, dtype=torch.long)
    if config.input_mode == "scaled":
        x = add_noise(scheduler, x, torch.zeros_like(x), t)  # sqrt(abar_t) x
    elif config.input_mode == "noise":
        g = torch.Generator().manual_seed(config.noise_seed * 1_000_003 + index0)
        x = add_noise(scheduler, x, torch.randn(x.shape, generator=g), t)
    return x


@torch.no_grad()
def window_latents(backbone, windows: np.ndarray, present: np.ndarray, config: CacheConfig, scheduler,
                   mu_law: bool, rate: float = 1.0, index0: int = 0) -> np.ndarray:
    """Latents of windows [W, K, L] (store units; NaN = missing) -> [W, n_layer, P, K, H] float32,
    NaN where a channel is missing. ``index0`` seeds the noise of input mode "noise"."""
    W, K, L = windows.shape
    pairs = np.argwhere(present)  # [M, 2] (window, channel)
    x = torch.from_numpy(np.ascontiguousarray(windows[pairs[:, 0], pairs[:, 1]], dtype=np.float32))[:, None]
    x = backbone_inputs(x, config, scheduler, mu_law, index0)
    t = torch.full((len(x),), config.t, dtype=torch.long)
    channel = torch.from_numpy(pairs[:, 1]).long()
    device = next(backbone.parameters()).device
    pooled = pooled_activations(backbone, x.to(device), t.to(device), channel.to(device), config.query,
                                config.window, config.reduction, rate).cpu().numpy()  # [M, n, P, H]
    n, P, H = pooled.shape[1:]
    out = np.full((W, n, P, K, H), np.nan, dtype=np.float32)
    out[pairs[:, 0], :, :, pairs[:, 1]] = pooled
    return out


class LatentCache:
    """Read access to a complete cache."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{self.path}: no latent cache; run notebooks/30_cache_latents with this run_dir first")
        self.meta = read_json(meta_path)
        if not self.meta.get("complete"):
            raise CacheMismatch(f"{self.path}: the cache is incomplete (interrupted?); run notebook 30 again to finish it")

    def latents(self, split: str) -> np.ndarray:
        return np.memmap(self.path / split / "latents.bin", dtype=self.meta["dtype"], mode="r",
                         shape=tuple(self.meta["shapes"][split]))

    def check(self, expected: dict) -> None:
        """Raise :class:`CacheMismatch` naming every key whose value differs from ``expected``."""
        settings = {k: self.meta["settings"].get(k) for k in expected}
        keys = differences(json.loads(json.dumps(settings)), json.loads(json.dumps(expected)))
        if keys:
            detail = "; ".join(f"{k}: cache {self.meta['settings'].get(k.split('.')[0])!r} vs {expected.get(k.split('.')[0])!r}"
                               for k in keys)
            raise CacheMismatch(f"{self.path}: the cache does not match this run ({', '.join(keys)} differ: {detail}); "
                                "rebuild it with notebook 30")


def cache_settings(config: CacheConfig, backbone, store: EEGStore, backbone_config: dict, mu_law: bool) -> dict:
    """What identifies a cache (everything but the batch size)."""
    settings = {k: v for k, v in asdict(config).items() if k != "batch_windows"}
    settings.update(backbone_sha256=weights_sha256(backbone), backbone=backbone_config, mu_law=mu_law,
                    store=fingerprint(store.meta["params"]))
    return settings


def build_cache(path: str | os.PathLike, backbone, store: EEGStore, config: CacheConfig, checkpoint: str | os.PathLike,
                backbone_config: dict, mu_law: bool, diffusion_config, progress=None, overwrite: bool = False,
                splits=CACHE_SPLITS) -> LatentCache:
    """Build (or finish, or reuse) the cache of ``splits`` at ``path``."""
    path = Path(path)
    settings = cache_settings(config, backbone, store, backbone_config, mu_law)
    meta_path = path / "meta.json"
    if meta_path.exists() and not overwrite:
        existing = read_json(meta_path)
        if existing["settings"] != json.loads(json.dumps(settings)):
            keys = differences(existing["settings"], json.loads(json.dumps(settings)))
            raise CacheMismatch(f"{path}: a cache with other settings exists ({', '.join(keys)} differ); "
                                "rebuild it (notebook 30 with rebuild=True) or use another run_dir")
        if existing.get("complete"):
            return LatentCache(path)
        meta = existing  # resume
    else:
        backbone_layers = backbone_config["n_layer"]
        d_model = backbone_config["d_model"]
        shapes = {s: [store.meta["shapes"][s][0], backbone_layers, store.window_samples // config.window,
                      store.meta["shapes"][s][1], d_model] for s in splits}
        meta = {"settings": settings, "dtype": config.dtype, "shapes": shapes, "splits": list(splits),
                "done": {s: 0 for s in splits}, "complete": False, "checkpoint": str(checkpoint)}
        for s in splits:
            (path / s).mkdir(parents=True, exist_ok=True)
            np.memmap(path / s / "latents.bin", dtype=config.dtype, mode="w+", shape=tuple(shapes[s])).flush()
        atomic_write_json(meta_path, meta)
    scheduler = ddpm_scheduler(diffusion_config)
    for split in splits:
        windows, present = store.windows(split), store.present(split)
        out = np.memmap(path / split / "latents.bin", dtype=config.dtype, mode="r+", shape=tuple(meta["shapes"][split]))
        starts = range(meta["done"][split], len(windows), config.batch_windows)
        bar = progress(total=len(windows), initial=meta["done"][split], desc=f"cache {split}") if progress else None
        for start in starts:
            stop = min(start + config.batch_windows, len(windows))
            out[start:stop] = window_latents(backbone, np.asarray(windows[start:stop]), present[start:stop], config,
                                             scheduler, mu_law, index0=start)
            out.flush()
            meta["done"][split] = stop
            atomic_write_json(meta_path, meta)  # resume point
            if bar:
                bar.update(stop - start)
        if bar:
            bar.close()
        del out
    meta["complete"] = True
    atomic_write_json(meta_path, meta)
    return LatentCache(path)


class ArrayCache:
    """Latents held in memory, with the one method the LFT's datasets use (``latents(split)``)."""

    def __init__(self, latents: dict[str, np.ndarray]):
        self._latents = latents

    def latents(self, split: str) -> np.ndarray:
        return self._latents[split]


def split_latents(backbone, store, split: str, cache_config, scheduler, mu_law: bool) -> np.ndarray:
    """[N, n, P, K, H] latents of every window of ``split`` (NaN = missing channel), computed from the
    raw windows as notebook 30 caches them and notebook 40 tests them."""

    windows, present = store.windows(split), store.present(split)
    step = cache_config.batch_windows
    chunks = [window_latents(backbone, np.asarray(windows[i:i + step]), present[i:i + step], cache_config, scheduler,
                             mu_law, index0=i) for i in range(0, len(windows), step)]
    n_layer, d = len(backbone.blocks), backbone.config.d_model
    return np.concatenate(chunks) if chunks else np.zeros((0, n_layer, 0, windows.shape[1], d), np.float32)


@torch.no_grad()
def test_latents(backbone, store, cache_config, scheduler, mu_law: bool, progress=None) -> np.ndarray:
    """Latents [N, n, P, K, H] of every test window, each once, through ``backbone`` from the raw
    signal (never from a cache), ``cache_config.batch_windows`` windows per call."""
    windows, present = store.windows("test"), store.present("test")
    step = cache_config.batch_windows
    starts = range(0, len(windows), step)
    return np.concatenate([window_latents(backbone, np.asarray(windows[start:start + step]), present[start:start + step],
                                          cache_config, scheduler, mu_law, index0=10**9 + start)
                           for start in (progress(starts, desc="test pass") if progress else starts)])


def stored_test_latents(path, backbone, store, cache_config, scheduler, mu_law: bool, fs: float | None = None,
                        progress=None) -> np.ndarray:
    """:func:`test_latents` (or, given ``fs``, the test windows resampled to ``fs`` Hz:
    :func:`reduced_rate_latents`), kept at ``path`` (.npy) beside the settings that made
    them (:func:`eegdm_utils.core.files.stored_array`): computed once per backbone weights, cache settings, store
    and rate, then read back (the seeds of notebook 40, the variants of notebook 60)."""
    settings = {**cache_settings(cache_config, backbone, store, asdict(backbone.config), mu_law), "fs": fs}
    if fs is not None:  # what reduced_rate_latents does (an older file made another way is not read back)
        settings["reduced_rate"] = "companded, then resampled; pooled in the cache's windows"
    if fs is None:
        return stored_array(path, settings, lambda: test_latents(backbone, store, cache_config, scheduler, mu_law,
                                                                 progress))
    return stored_array(path, settings, lambda: reduced_rate_latents(backbone, store.windows("test"), store.present("test"),
                                                                     fs, cache_config, scheduler, mu_law))


@torch.no_grad()
def variant_latents(backbone, store, split: str, pool: int, scheduler, mu_law: bool, batch_windows: int = 8,
                    progress=None, window: int = 200, t: int = 1) -> dict:
    """The event pool's activity of every window of ``split`` for the four cache variants, from one
    pass: {(query, reduction): [N, n, K, H]} with query gate|filter and reduction std|mean (NaN =
    missing channel). Clean input at step ``t``, as the paper's cache."""
    windows, present = store.windows(split), store.present(split)
    N, K, _ = windows.shape
    n, H = len(backbone.blocks), backbone.config.d_model
    keys = [(q, r) for q in ("gate", "filter") for r in ("std", "mean")]
    out = {key: np.full((N, n, K, H), np.nan, dtype=np.float32) for key in keys}
    cells = slice(pool * window, (pool + 1) * window)
    starts = range(0, N, batch_windows)
    device = next(backbone.parameters()).device
    for start in (progress(starts, desc=f"variants {split}") if progress else starts):
        pairs = np.argwhere(present[start:start + batch_windows])  # [M, 2] (window, channel)
        x = torch.from_numpy(np.ascontiguousarray(windows[start + pairs[:, 0], pairs[:, 1]], dtype=np.float32))[:, None]
        x = backbone_inputs(x, CacheConfig(t=t), scheduler, mu_law).to(device)
        steps = torch.full((len(x),), t, dtype=torch.long, device=device)
        channel = torch.from_numpy(pairs[:, 1]).long().to(device)
        for i, (gate, filt) in enumerate(block_activity(backbone, x, steps, channel)):
            for q, act in (("gate", gate[:, cells]), ("filter", filt[:, cells])):  # [M, window, H]
                out[(q, "std")][start + pairs[:, 0], i, pairs[:, 1]] = sample_std(act, 1).cpu().numpy()
                out[(q, "mean")][start + pairs[:, 0], i, pairs[:, 1]] = act.mean(dim=1).cpu().numpy()
    return out


def reduced_rate_windows(windows: np.ndarray, fs: float, mu_law: bool, trained_fs: float = 200.0):
    """Windows [N, K, L] at ``trained_fs`` as the reference's reduced-sampling test gives them to the backbone
    (``src/extra/reduce_sampling.py``): mu-law companded first when ``mu_law`` (the dataset's transform, applied
    as each window is read), then resampled to ``fs`` with MNE's FFT resampling (``Raw.resample``'s call), with
    the S4D ``rate`` it passes (fs / 200): (windows [N, K, L'], rate). NaN channels stay NaN."""
    import mne

    windows = np.asarray(windows, dtype=np.float64)
    missing = np.isnan(windows).any(axis=-1)  # [N, K]
    windows = np.nan_to_num(windows)
    if mu_law:
        windows = staged_mu_law(windows)
    # Raw.resample's call (npad and pad "auto"), applied to every window at once
    out = mne.filter.resample(windows, up=fs, down=trained_fs, npad="auto", pad="auto", axis=-1, verbose="error")
    out[missing] = np.nan
    return out.astype(np.float32), reference_rate(fs, trained_fs)


def reduced_rate_latents(backbone, windows, present, fs: float, cache_config, scheduler, mu_law: bool):
    """Latents [N, n, P', K, H] of windows [N, K, L] tested at ``fs`` (Table VIII), as the reference: each batch
    of ``cache_config.batch_windows`` companded and resampled by :func:`reduced_rate_windows`, run with its rate,
    and pooled in the cache's own windows (200 samples), so 950 or 900 samples give 4 whole pools
    (P' = L' // window) and the rest is in none; the LFT's fifth pool then sees no data
    (:class:`eegdm_utils.eval.ablations.UnfilledPools`)."""
    chunks, step = [], cache_config.batch_windows
    for start in range(0, len(windows), step):
        companded, rate = reduced_rate_windows(windows[start:start + step], fs, mu_law)
        chunks.append(window_latents(backbone, companded, present[start:start + step], cache_config, scheduler,
                                     mu_law=False, rate=rate))
    return np.concatenate(chunks)
