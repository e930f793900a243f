import numpy as np
import pytest
import torch

from eegdm_utils.models.lft import LatentFusionTransformer, LFTConfig, no_decay_groups
from eegdm_utils.train.finetuning import label_subset

SMALL = LFTConfig(d_model=16, n_layer=3, n_pool=5, n_tokens=4, n_heads=2, n_final=1, channel_norm="layer")


def n_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_paper_configuration_parameter_count():
    assert n_parameters(LatentFusionTransformer(LFTConfig())) == 6_898_950


def test_fusion_ablations_have_the_reference_structure():
    """The reference's no-fusion ablation (all 20 x 5 x 22 tokens into 34 self-attention blocks)
    has 7,023,622 parameters; its mean fusion puts the 5 x 22 layer-averaged tokens into 35."""
    none = LatentFusionTransformer(LFTConfig(fusion="none", n_final=34))
    assert n_parameters(none) == 7_023_622 and none.position.shape == (2200, 128)
    mean = LatentFusionTransformer(LFTConfig(fusion="mean", n_final=35))
    block = n_parameters(mean.final_blocks[0])
    assert mean.fusion_tokens is None and len(mean.fusion_blocks) == 0 and mean.position.shape == (110, 128)
    assert n_parameters(mean) == 35 * block + 110 * 128 + 128 * 6 + 6
    # the layer average is what it reads: the same mean activity, however it is spread over layers
    small = LatentFusionTransformer(LFTConfig(**{**SMALL.__dict__, "fusion": "mean", "channel_norm": "none"})).eval()
    x = torch.rand(2, 3, 5, 22, 16)
    shuffled = x[:, [2, 0, 1]]
    assert torch.allclose(small(x), small(shuffled), atol=1e-5)
    assert not torch.allclose(small(x), small(x * torch.tensor([3.0, 0.0, 0.0])[None, :, None, None, None]), atol=1e-3)


@pytest.mark.parametrize("fusion", ["layer", "mean", "none"])
@pytest.mark.parametrize("norm, embed", [("layer", "none"), ("log-standard", "channel")])
def test_missing_channels_do_not_matter(fusion, norm, embed):
    torch.manual_seed(0)
    model = LatentFusionTransformer(LFTConfig(**{**SMALL.__dict__, "fusion": fusion, "channel_norm": norm,
                                                 "channel_embed": embed})).eval()
    x = torch.rand(2, 3, 5, 22, 16) + 0.05  # positive, as cached stds
    present = torch.ones(2, 22, dtype=torch.bool)
    present[:, [8, 13]] = False  # A1-T3, A2-T4 not derivable
    y = model(x, present)
    x2 = x.clone()
    x2[:, :, :, [8, 13]] = torch.nan if norm == "log-standard" else 1e3 * torch.randn(2, 3, 5, 2, 16)
    assert torch.allclose(model(x2, present), y, atol=1e-5)
    assert not torch.allclose(model(x2), y, atol=1e-3)  # without the mask they would


@pytest.mark.parametrize("fusion", ["layer", "mean", "none"])
def test_channel_norm_makes_the_lft_blind_to_the_scale_of_each_token(fusion):
    """The cached activity is small and differs in scale between layers; with channel_norm the
    LFT sees each channel token standardised, so rescaling tokens changes nothing."""
    torch.manual_seed(0)
    model = LatentFusionTransformer(LFTConfig(**{**SMALL.__dict__, "fusion": fusion})).eval()
    literal = LatentFusionTransformer(LFTConfig(**{**SMALL.__dict__, "fusion": fusion, "channel_norm": False})).eval()
    literal.load_state_dict(model.state_dict())  # same parameters: the norm has none
    x = 0.3 * torch.rand(2, 3, 5, 22, 16)  # token variance well above the norm's eps (1e-5)
    scale = torch.tensor([1.0, 7.0, 0.5])[None, :, None, None, None] * (1 + torch.rand(2, 1, 5, 22, 1))
    assert torch.allclose(model(x * scale), model(x), atol=1e-3)  # up to the eps
    assert not torch.allclose(literal(x * scale), literal(x), atol=1e-2)


def test_reference_init_of_tokens_and_positions_is_uniform_on_0_1():
    torch.manual_seed(0)
    model = LatentFusionTransformer(LFTConfig())  # paper configuration
    for p in (model.fusion_tokens, model.position):
        assert p.min() >= 0 and p.max() < 1 and abs(p.mean().item() - 0.5) < 0.01
    normal = LatentFusionTransformer(LFTConfig(init="normal"))
    assert normal.fusion_tokens.std().item() == pytest.approx(0.02, rel=0.05)


@pytest.mark.parametrize("kind, n_embeddings", [("channel", 22), ("mirror", 2)])
def test_channel_embedding_tells_the_lft_which_channel_a_token_came_from(kind, n_embeddings):
    torch.manual_seed(0)
    blind = LatentFusionTransformer(SMALL).eval()
    seeing = LatentFusionTransformer(LFTConfig(**{**SMALL.__dict__, "channel_embed": kind})).eval()
    assert seeing.channel_embedding.shape == (n_embeddings, 16)
    x = torch.randn(2, 3, 5, 22, 16)
    swapped = x.clone()
    swapped[:, :, :, [0, 4]] = x[:, :, :, [4, 0]]  # FP1-F7 <-> FP2-F8: left and right
    # cross-attention alone is blind to the order of the channel tokens ...
    assert torch.allclose(blind(swapped), blind(x), atol=1e-5)
    # ... the embedding is what makes a left-right swap visible
    assert not torch.allclose(seeing(swapped), seeing(x), atol=1e-4)


def test_hemisphere_index_of_the_tcp_montage():
    from eegdm_utils.models.lft import hemisphere_index

    left = {"FP1-F7", "F7-T3", "T3-T5", "T5-O1", "A1-T3", "T3-C3", "C3-CZ", "FP1-F3", "F3-C3", "C3-P3", "P3-O1"}
    from eegdm_utils.data.montage import TCP_NAMES

    assert hemisphere_index().tolist() == [0 if name in left else 1 for name in TCP_NAMES]


def test_layer_subset_and_shapes():
    model = LatentFusionTransformer(LFTConfig(**{**SMALL.__dict__, "layers": (0, 2)}))
    assert len(model.fusion_blocks) == 2
    assert model(torch.randn(4, 3, 5, 22, 16)).shape == (4, 6)
    with pytest.raises(ValueError, match="do not fit"):
        model(torch.randn(4, 3, 4, 22, 16))
    with pytest.raises(ValueError, match="outside"):
        LFTConfig(n_layer=3, layers=(0, 5))


def test_pools_have_their_own_tokens_and_blocks_are_shared_across_pools():
    model = LatentFusionTransformer(SMALL)
    assert model.fusion_tokens.shape == (5, 4, 16)
    assert len(model.fusion_blocks) == 3  # one per backbone layer, shared by the 5 pools


def test_weight_decay_spares_fusion_tokens_biases_and_1d_weights_but_not_positions_as_the_reference():
    # the reference's conf/finetune/base.yaml: no_wd [decoder.cls_token, decoder.ap_cls_token] and
    # bias_1dim_no_wd: its positional embeddings (pos_embed, p_pos_embed) are decayed
    model = LatentFusionTransformer(SMALL)
    decay, no_decay = no_decay_groups(model, 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    assert "position" in decayed and "head.weight" in decayed
    assert "fusion_tokens" not in decayed and "head.bias" not in decayed
    assert not any(n.endswith("bias") or "norm" in n for n in decayed)
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_label_subset_is_stratified_and_fixed():
    labels = np.repeat(np.arange(6), [5, 40, 80, 20, 100, 300])
    a, b = label_subset(labels, 0.1, 4523), label_subset(labels, 0.1, 4523)
    assert np.array_equal(a, b)
    counts = np.bincount(labels[a], minlength=6)
    assert counts.tolist() == [max(1, round(0.1 * n)) for n in [5, 40, 80, 20, 100, 300]]
    assert np.array_equal(label_subset(labels, 1.0, 0), np.arange(len(labels)))


def test_early_stopping_waits_for_the_warm_up(monkeypatch):
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import EarlyStopping

    from eegdm_utils.train.finetuning import WarmupEarlyStopping

    checked = []
    monkeypatch.setattr(EarlyStopping, "_run_early_stopping_check", lambda self, trainer: checked.append(trainer.current_epoch))
    stop = WarmupEarlyStopping(20, monitor="val_kappa", mode="max", patience=3)
    for epoch in range(25):
        stop._run_early_stopping_check(SimpleNamespace(current_epoch=epoch))
    assert checked == list(range(20, 25))  # from epoch index 20 on, as the reference's EarlyStoppingWithWarmup


def test_balanced_class_weights_count_annotation_lines():
    from types import SimpleNamespace

    from eegdm_utils.train.finetuning import FinetuneConfig, class_weights

    # 3 examples of class 0 standing for 1 + 1 + 2 lines, one of class 2 for 4 lines, class 1 absent
    data = SimpleNamespace(labels=np.array([0, 0, 0, 2]), weights=np.array([1.0, 1.0, 2.0, 4.0]))
    w = class_weights(data, 3)
    assert w.tolist() == pytest.approx([8 / (2 * 4), 0.0, 8 / (2 * 4)])
    data.weights = np.array([1.0, 1.0, 1.0, 1.0])
    assert class_weights(data, 3).tolist() == pytest.approx([4 / (2 * 3), 0.0, 4 / (2 * 1)])
    with pytest.raises(ValueError, match="class_weight"):
        FinetuneConfig(class_weight="inverse")


def test_standard_token_norm_uses_training_statistics_per_layer_and_unit_without_missing_channels():
    rng = np.random.default_rng(0)
    latents = rng.uniform(0.05, 0.5, size=(6, 3, 5, 22, 16)).astype(np.float32)
    latents[:, 1] *= 10  # layers of very different scale
    present = np.ones((6, 22), dtype=bool)
    present[:2, 8] = False
    latents[:2, :, :, 8] = 1e4  # a missing channel's content must not enter the statistics
    model = LatentFusionTransformer(LFTConfig(**{**SMALL.__dict__, "channel_norm": "log-standard"}))
    model.fit_token_statistics(latents, present)
    logs = np.log(latents).transpose(1, 0, 2, 3, 4)  # [n, N, P, K, H]
    kept = np.broadcast_to(present[None, :, None, :, None], logs.shape)
    for layer in range(3):
        values = logs[layer][kept[layer]].reshape(-1, 16)
        assert np.allclose(model.token_mean[layer].numpy(), values.mean(0), atol=1e-4)
        assert np.allclose(model.token_std[layer].numpy(), values.std(0, ddof=1), atol=1e-4)
    # forward standardises with them: the kept training tokens have mean 0 and std 1 per (layer, unit)
    z = model.normalise_tokens(torch.from_numpy(latents)).numpy().transpose(1, 0, 2, 3, 4)[kept].reshape(3, -1, 16)
    assert np.allclose(z.mean(1), 0, atol=1e-4) and np.allclose(z.std(1, ddof=1), 1, atol=1e-4)
    # a token's amplitude survives the norm (a layer norm over H would remove a common factor)
    x = torch.from_numpy(latents[2:4])
    model.eval()
    assert not torch.allclose(model(2 * x), model(x), atol=1e-4)
    layer_norm = LatentFusionTransformer(LFTConfig(**{**SMALL.__dict__, "channel_norm": "layer"})).eval()
    assert torch.allclose(layer_norm(2 * x), layer_norm(x), atol=1e-4)


def test_layer_subsets_keep_the_reference_parameter_budget():
    from eegdm_utils.eval.ablations import comparable_final_blocks, layer_subset

    assert layer_subset("first_half", 20) == tuple(range(10)) and layer_subset("second_half", 20) == tuple(range(10, 20))
    assert layer_subset("third_quarter", 20) == tuple(range(10, 15)) and layer_subset("every_other", 4) == (0, 2)
    with pytest.raises(ValueError, match="quarters"):
        layer_subset("first_quarter", 6)
    paper = LFTConfig()
    assert comparable_final_blocks(paper, layer_subset("first_half", 20)) == 22  # the reference's configs
    assert comparable_final_blocks(paper, layer_subset("fourth_quarter", 20)) == 28
    small = LFTConfig(d_model=32, n_layer=4, n_tokens=8, n_heads=4, n_final=2)
    n = comparable_final_blocks(small, (0, 1))
    full = n_parameters(LatentFusionTransformer(small))
    sizes = {k: n_parameters(LatentFusionTransformer(LFTConfig(**{**vars(small), "layers": (0, 1), "n_final": k})))
             for k in (n - 1, n, n + 1)}
    assert min(sizes, key=lambda k: abs(sizes[k] - full)) == n  # the closest budget


def test_reduced_sampling_companders_then_resamples_as_the_reference_script():
    """The reference's reduce_sampling reads each 200 Hz test window through the dataset's mu-law transform,
    then resamples it with MNE's Raw.resample to 200 * rate Hz and passes rate = fs / 200 to the backbone."""
    import mne

    from eegdm_utils.train.latent_cache import reduced_rate_windows

    t = np.arange(1000) / 200.0
    x = 3.0 * np.stack([np.sin(2 * np.pi * 7.0 * t), np.cos(2 * np.pi * 11.0 * t)])[None]  # [1, 2, 1000], beyond |1|
    x = np.concatenate([x, x[:, ::-1]])  # [2, 2, 1000]
    x[1, 0] = np.nan  # a missing channel stays missing
    out, rate = reduced_rate_windows(x, 190.0, mu_law=True)
    assert out.shape == (2, 2, 950) and rate == pytest.approx(0.95)
    mu = 255.0  # the staged mu-law written out: identity inside [-1, 1], log-compressed beyond
    companded = np.where(np.abs(x[0]) <= 1, x[0], np.sign(x[0]) * np.log1p(mu * np.abs(x[0])) / np.log1p(mu))
    reference = mne.io.RawArray(companded, mne.create_info(2, 200.0), verbose="error").resample(190.0, verbose="error")
    assert np.allclose(out[0], reference.get_data(), atol=1e-5)
    resampled_first = mne.io.RawArray(x[0], mne.create_info(2, 200.0), verbose="error").resample(190.0, verbose="error")
    assert not np.allclose(out[0], resampled_first.get_data(), atol=1e-2)  # the order matters
    assert np.isnan(out[1, 0]).all() and np.isfinite(out[1, 1]).all()
    plain, _ = reduced_rate_windows(x, 190.0, mu_law=False)
    assert np.allclose(plain[0], resampled_first.get_data(), atol=1e-5)


def test_reduced_rate_windows_fill_four_of_five_pools_and_the_fifth_keeps_its_trained_tokens():
    """950 samples in the cache's 200-sample pools: 4 pools (samples 0-799). The LFT trained on 5 pools fuses
    those 4; the fifth pool's fusion tokens reach the final blocks as they are (the reference's decoder loop)."""
    from eegdm_utils.eval.ablations import UnfilledPools
    from eegdm_utils.models.diffusion import DiffusionConfig, ddpm_scheduler
    from eegdm_utils.models.ssmdp import SSMDP, SSMDPConfig
    from eegdm_utils.train.latent_cache import CacheConfig, reduced_rate_latents

    torch.manual_seed(0)
    backbone = SSMDP(SSMDPConfig(d_model=8, d_state=4, n_layer=2, d_cond=16, d_cond_embed=8)).eval()
    windows = np.random.default_rng(0).normal(size=(2, 22, 1000)).astype(np.float32)
    present = np.ones((2, 22), dtype=bool)
    latents = reduced_rate_latents(backbone, windows, present, 190.0, CacheConfig(), ddpm_scheduler(DiffusionConfig()),
                                   mu_law=True)
    assert latents.shape == (2, 2, 4, 22, 8)
    lft = LatentFusionTransformer(LFTConfig(d_model=8, n_layer=2, n_pool=5, n_tokens=2, n_heads=2, n_final=0,
                                            channel_norm="layer")).eval()
    x, keep = torch.from_numpy(latents), torch.from_numpy(present)
    with pytest.raises(ValueError, match="do not fit the LFT"):
        lft(x, keep)  # fewer pools only when asked for
    padded = torch.cat([x, torch.randn(2, 2, 1, 22, 8)], dim=2)  # any fifth pool: pools are fused apart
    with torch.no_grad():
        fused = lft.fuse(lft.normalise_tokens(padded), ~keep)[:, :8]  # [2, 4 pools x 2 tokens, 8]
        tokens = torch.cat([fused, lft.fusion_tokens[4].expand(2, 2, 8)], dim=1) + lft.position
        expected = lft.head(tokens.mean(dim=1))
        torch.testing.assert_close(UnfilledPools(lft)(x, keep), expected)
    mean_fusion = LatentFusionTransformer(LFTConfig(d_model=8, n_layer=2, n_pool=5, n_tokens=2, n_heads=2, n_final=0,
                                                    fusion="mean"))
    with pytest.raises(ValueError, match="fewer pools only with layer fusion"):
        UnfilledPools(mean_fusion)(x, keep)


def test_uncached_noise_injection_draws_fresh_noise_per_step_and_none_at_test():
    """Table II's faithful variant: training steps see a new forward-noise draw at t; eval sees
    sqrt(abar_t) x (zero noise), i.e. the cache's input_mode "scaled"."""
    from eegdm_utils.eval.ablations import UncachedLFT
    from eegdm_utils.models.diffusion import DiffusionConfig, ddpm_scheduler
    from eegdm_utils.models.ssmdp import SSMDP, SSMDPConfig
    from eegdm_utils.train.latent_cache import CacheConfig, window_latents

    torch.manual_seed(0)
    backbone = SSMDP(SSMDPConfig(d_model=8, d_state=4, n_layer=2, d_cond=16, d_cond_embed=8)).eval()
    lft = LatentFusionTransformer(LFTConfig(d_model=8, n_layer=2, n_pool=5, n_tokens=2, n_heads=2, n_final=1,
                                            channel_norm="layer"))
    scheduler = ddpm_scheduler(DiffusionConfig())
    model = UncachedLFT(backbone, lft, scheduler, t=20, mu_law=True)
    x = torch.randn(2, 22, 1000) * 0.5
    present = torch.ones(2, 22, dtype=torch.bool)
    present[:, 8] = False
    model.train()
    assert not model.backbone.training  # frozen: stays in eval mode
    a, b = model.latents(x, present), model.latents(x, present)
    assert not torch.allclose(a, b)  # a fresh draw at every step
    model.eval()
    c, d = model.latents(x, present), model.latents(x, present)
    assert torch.equal(c, d)
    scaled = window_latents(backbone, x.numpy(), present.numpy(), CacheConfig(t=20, input_mode="scaled"), scheduler,
                            mu_law=True)
    assert np.allclose(c.numpy(), np.nan_to_num(scaled), atol=1e-5)  # zero noise = the "scaled" cache
    # only the LFT learns
    model.train()
    model(x, present).sum().backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.lft.parameters())
    names = {id(p) for group in no_decay_groups(model, 0.05) for p in group["params"]}
    assert names == {id(p) for p in model.lft.parameters()}


def test_every_ablation_variant_builds_with_the_reference_parameter_count():
    from eegdm_utils.eval.ablations import VARIANTS, ablation_lft_config

    paper = LFTConfig()
    counts = {name: n_parameters(LatentFusionTransformer(ablation_lft_config(paper, v))) for name, v in VARIANTS.items()}
    assert counts["full"] == counts["rate_190"] == counts["step1"] == 6_898_950
    # the sizes the paper's Tables V and VI print (millions, one decimal)
    printed = {"first_half": 7.0, "second_half": 7.0, "first_quarter": 6.9, "second_quarter": 6.9,
               "third_quarter": 6.9, "fourth_quarter": 6.9, "no_fusion": 7.0, "mean_fusion": 7.0}
    assert {name: round(counts[name] / 1e6, 1) for name in printed} == printed
    assert all(ablation_lft_config(paper, VARIANTS[q]).n_final == 28 for q in ("first_quarter", "fourth_quarter"))
    assert ablation_lft_config(paper, VARIANTS["third_quarter"]).layers == (10, 11, 12, 13, 14)
    assert counts["no_fusion"] == 7_023_622
    assert ablation_lft_config(paper, VARIANTS["mean_fusion"]).n_final == 35
    assert ablation_lft_config(paper, VARIANTS["first_half"]).n_final == 22
    small = LFTConfig(d_model=32, n_layer=4, n_tokens=8, n_heads=4, n_final=2)
    for name in ("no_fusion", "mean_fusion", "first_half", "every_other"):
        n = n_parameters(LatentFusionTransformer(ablation_lft_config(small, VARIANTS[name])))
        assert 0.6 < n / n_parameters(LatentFusionTransformer(small)) < 1.6, name  # a comparable budget
    capped = ablation_lft_config(small, VARIANTS["no_fusion"], n_final=2)  # make run's compute cap
    assert capped.n_final == 2 and capped.fusion == "none" and ablation_lft_config(small, VARIANTS["no_fusion"]).n_final == 6


def test_fusion_ignores_missing_channels_as_if_they_were_absent():
    """An independent oracle for the key-padding mask: fusing with channels marked missing equals
    fusing the kept channels alone, whatever the missing tokens hold (zeros included, which a
    dropped mask would still attend to)."""
    from eegdm_utils.models.lft import FusionBlock

    torch.manual_seed(0)
    block = FusionBlock(16, 4, 2, 0.0).eval()
    tokens, channels = torch.randn(3, 4, 16), torch.randn(3, 22, 16)
    missing = torch.zeros(3, 22, dtype=torch.bool)
    missing[:, [8, 13]] = True
    kept = ~missing[0]
    for fill in (0.0, 5.0):
        filled = channels.clone()
        filled[missing] = fill
        torch.testing.assert_close(block(tokens, filled, missing), block(tokens, channels[:, kept], None),
                                   rtol=1e-5, atol=1e-6)
    model = LatentFusionTransformer(LFTConfig(**{**SMALL.__dict__, "fusion": "layer"})).eval()
    latents = torch.rand(2, SMALL.used_layers, 5, 22, SMALL.d_model)
    latents[:, :, :, [8, 13]] = 0.0
    torch.testing.assert_close(model.fuse(latents, missing[:2]), model.fuse(latents[:, :, :, kept], None),
                               rtol=1e-5, atol=1e-6)
