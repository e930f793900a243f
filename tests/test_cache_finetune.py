"""The latent cache and a tiny end-to-end: pretrain -> cache -> LFT -> test metrics."""

import json

import numpy as np
import pytest
import torch

from eegdm_utils.data.datasets import LatentLines
from eegdm_utils.models.diffusion import ddpm_scheduler
from eegdm_utils.models.lft import LatentFusionTransformer, LFTConfig, no_decay_groups
from eegdm_utils.models.ssmdp import SSMDPConfig
from eegdm_utils.train.finetuning import FinetuneConfig, evaluate_lines, fit_classifier
from eegdm_utils.train.latent_cache import (CacheConfig, CacheMismatch, LatentCache, build_cache, weights_sha256,
                                            window_latents)
from eegdm_utils.train.optim import OptimSettings
from eegdm_utils.train.pretraining import PretrainConfig, load_denoiser, train_ssmdp


@pytest.fixture(scope="module")
def backbone_run(tiny_store, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    config = PretrainConfig(model=SSMDPConfig(d_model=8, d_state=4, n_layer=2, d_cond=16, d_cond_embed=8),
                            batch_size=8, max_steps=3, optim=OptimSettings(lr=1e-3, grad_clip=1.0))
    train_ssmdp(run, tiny_store, config, val_every=10, max_val_samples=8)
    return run


def _build(run, store, config=CacheConfig(batch_windows=4), **kw):
    ckpt = run / "pretrain" / "ssmdp.ckpt"
    model, pre = load_denoiser(ckpt)
    return build_cache(run / kw.pop("name", "cache"), model, store, config, ckpt, vars(pre.model), pre.mu_law,
                       pre.diffusion, **kw)


def test_cache_shapes_metadata_and_missing_channels(backbone_run, tiny_store):
    cache = _build(backbone_run, tiny_store)
    U = tiny_store.meta["shapes"]["train"][0]
    assert cache.latents("train").shape == (U, 2, 5, 22, 8) and cache.latents("train").dtype == np.float16
    assert set(cache.meta["splits"]) == {"train", "val"}  # never the test split
    s = cache.meta["settings"]
    assert s["t"] == 1 and s["query"] == "gate" and s["reduction"] == "std" and s["input_mode"] == "clean"
    # the cached values are the backbone's (float16 of the float32 computation)
    model, pre = load_denoiser(backbone_run / "pretrain" / "ssmdp.ckpt")
    assert s["backbone_sha256"] == weights_sha256(model)
    direct = window_latents(model, np.asarray(tiny_store.windows("train")[:4]), tiny_store.present("train")[:4],
                            CacheConfig(), ddpm_scheduler(pre.diffusion), pre.mu_law)
    assert np.allclose(np.asarray(cache.latents("train")[:4], dtype=np.float32), direct, rtol=2e-3, atol=2e-3)


def test_cache_mismatch_names_the_keys(backbone_run, tiny_store):
    cache = _build(backbone_run, tiny_store)
    cache.check({"t": 1, "query": "gate"})
    with pytest.raises(CacheMismatch, match=r"query, t differ"):
        cache.check({"t": 5, "query": "filter", "reduction": "std"})
    with pytest.raises(CacheMismatch, match="reduction"):
        _build(backbone_run, tiny_store, CacheConfig(reduction="mean"))


def test_interrupted_cache_resumes_to_the_same_result(backbone_run, tiny_store):
    full = _build(backbone_run, tiny_store, name="full")

    class Interrupt(Exception):
        pass

    class StopAfterOne:
        def __init__(self, **kw):
            self.calls = 0

        def update(self, n):
            self.calls += 1
            if self.calls == 2:
                raise Interrupt()

        def close(self):
            pass

    with pytest.raises(Interrupt):
        _build(backbone_run, tiny_store, name="resumed", progress=lambda **kw: StopAfterOne(**kw))
    meta = json.loads((backbone_run / "resumed" / "meta.json").read_text())
    assert not meta["complete"] and meta["done"]["train"] == 8
    with pytest.raises(CacheMismatch, match="incomplete"):
        LatentCache(backbone_run / "resumed")
    resumed = _build(backbone_run, tiny_store, name="resumed")
    for split in ("train", "val"):
        assert np.array_equal(np.asarray(full.latents(split)), np.asarray(resumed.latents(split)), equal_nan=True)


def test_tiny_end_to_end(backbone_run, tiny_store, tmp_path):
    cache = _build(backbone_run, tiny_store)
    config = LFTConfig(d_model=8, n_layer=2, n_tokens=2, n_heads=2, n_final=1)
    net = LatentFusionTransformer(config)
    ft = FinetuneConfig(max_epochs=2, warmup_epochs=1, batch_size=16)
    module, epochs, best = fit_classifier(net, LatentLines(cache, tiny_store, "train"), LatentLines(cache, tiny_store, "val"),
                                          ft, no_decay_groups(net, 0.05), tmp_path, 6)
    assert epochs == 2 and best.best_model_path
    model, pre = load_denoiser(backbone_run / "pretrain" / "ssmdp.ckpt")
    windows, present = np.asarray(tiny_store.windows("test")), tiny_store.present("test")
    latents = window_latents(model, windows, present, CacheConfig(), ddpm_scheduler(pre.diffusion), pre.mu_law)
    with torch.no_grad():
        pred = module.ema.ema_model.eval()(torch.from_numpy(np.nan_to_num(latents)), torch.from_numpy(present)).argmax(-1)
    m = evaluate_lines(pred.numpy(), tiny_store.faithful("test"), 6)
    assert m["n"] == tiny_store.meta["n_faithful"]["test"]
    lines = tiny_store.faithful("test")  # every line scored once, by its window's prediction (sklearn as the oracle)
    from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score

    truth, guess = lines["label"], pred.numpy()[lines["window"]]
    assert m["n"] == len(truth)
    assert m["kappa"] == pytest.approx(cohen_kappa_score(truth, guess))
    if len(np.unique(truth)) > 1:
        assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(truth, guess))


def test_backbone_fingerprint_follows_the_weights(backbone_run):
    ckpt = backbone_run / "pretrain" / "ssmdp.ckpt"
    model, _ = load_denoiser(ckpt)
    copy = backbone_run / "copy.ckpt"
    payload = torch.load(ckpt, map_location="cpu", weights_only=False)
    payload["resaved"] = "the same weights in another file"
    torch.save(payload, copy)
    assert copy.read_bytes() != ckpt.read_bytes()  # a hash of the file would differ ...
    assert weights_sha256(load_denoiser(copy)[0]) == weights_sha256(model)  # ... the weights' does not
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    assert weights_sha256(model) != weights_sha256(load_denoiser(ckpt)[0])


def test_sample_std_is_torch_std():
    from eegdm_utils.train.latent_cache import sample_std

    x = torch.rand(4, 5, 200, 3).transpose(1, 3)  # a strided view, as the cache's gate
    for dim in (1, 2, 3):
        torch.testing.assert_close(sample_std(x, dim), x.std(dim=dim))


@pytest.mark.parametrize("query, reduction", [("gate", "std"), ("filter", "mean")])
def test_window_latents_are_the_pooled_activity_of_each_block(query, reduction, perturbed_ssmdp, unfused_block):
    """An oracle independent of the cache's pass: each block written out (S4D.forward, torch.sigmoid,
    torch.tanh, the output projection; conftest's ``unfused_block``) and torch.std / torch.mean over each
    200-sample pool. Replacing the std pooling by the mean, or the query, fails it."""
    from eegdm_utils.models.diffusion import DiffusionConfig
    from eegdm_utils.train.latent_cache import backbone_inputs

    net = perturbed_ssmdp(SSMDPConfig(d_model=8, d_state=8, n_layer=3, d_cond=16, d_cond_embed=8), scale=0.05).eval()
    windows = np.random.default_rng(0).normal(0, 30, (2, 22, 400)).astype(np.float32)
    present = np.ones((2, 22), dtype=bool)
    present[1, 5] = False
    config, scheduler = CacheConfig(query=query, reduction=reduction), ddpm_scheduler(DiffusionConfig())
    got = window_latents(net, windows, present, config, scheduler, True)  # [W, n, P, K, H]
    assert np.isnan(got[1, :, :, 5]).all() and not np.isnan(np.delete(got[1], 5, axis=2)).any()
    x = backbone_inputs(torch.from_numpy(windows[0])[:, None], config, scheduler, True)  # [22, 1, 400]
    with torch.no_grad():
        cond = net.condition(torch.ones(22, dtype=torch.long), torch.arange(22))
        h = net.in_layer(x.transpose(1, 2))
        for i, block in enumerate(net.blocks):
            h, _, gate, filt = unfused_block(block, h, cond)
            act = (gate if query == "gate" else filt).unflatten(1, (2, 200))  # [22, P, 200, H]
            pooled = act.std(dim=2) if reduction == "std" else act.mean(dim=2)  # [22, P, H]
            np.testing.assert_allclose(got[0, i], pooled.permute(1, 0, 2).numpy(), rtol=1e-4, atol=1e-6)
