"""Independent oracles for the math: every expected value here is written out from the
formula (or a hand-made case), never taken from the function under test.

Each test names the slip it is there to catch (issue 33's planted bugs)."""

import math

import numpy as np
import pytest
import torch

from eegdm_utils.e2i.metrics import reconstruction_metrics
from eegdm_utils.models.diffusion import DiffusionConfig, add_noise, ddpm_scheduler, velocity, x0_from_v
from eegdm_utils.models.lft import FusionBlock, LatentFusionTransformer, LFTConfig
from eegdm_utils.models.ssmdp import SSMDP, SSMDPConfig
from eegdm_utils.train.finetuning import label_subset
from eegdm_utils.train.pretraining import SSMDPModule

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = SSMDPConfig(d_model=8, d_state=4, n_layer=3, d_cond=16, d_cond_embed=8, n_channels=22)


# --- the diffusion process, written out from the DDPM formulas -------------------------------

def _abar_cosine(T: int) -> np.ndarray:
    """abar_t of the squaredcos_cap_v2 schedule (Nichol & Dhariwal 2021), betas capped at 0.999."""
    f = lambda s: math.cos((s / T + 0.008) / 1.008 * math.pi / 2) ** 2
    betas = np.array([min(1 - f(i + 1) / f(i), 0.999) for i in range(T)])
    return np.cumprod(1 - betas)


def _abar_linear(T: int, start: float, end: float) -> np.ndarray:
    return np.cumprod(1 - np.linspace(start, end, T))


@pytest.mark.parametrize("schedule", ["squaredcos_cap_v2", "linear"])
def test_forward_process_velocity_and_inverse_against_the_formulas(schedule):
    config = DiffusionConfig(beta_schedule=schedule)
    scheduler = ddpm_scheduler(config)
    T = config.num_train_timesteps
    abar = _abar_cosine(T) if schedule == "squaredcos_cap_v2" else _abar_linear(T, config.beta_start, config.beta_end)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(4, 1, 30, generator=g, dtype=torch.float64), torch.randn(4, 1, 30, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 7, 31, T - 1])
    a = torch.tensor(np.sqrt(abar[t.numpy()]))[:, None, None]
    s = torch.tensor(np.sqrt(1 - abar[t.numpy()]))[:, None, None]
    torch.testing.assert_close(add_noise(scheduler, x0, eps, t), a * x0 + s * eps, rtol=1e-5, atol=2e-6)
    torch.testing.assert_close(velocity(scheduler, x0, eps, t), a * eps - s * x0, rtol=1e-5, atol=2e-6)
    x_t, v = a * x0 + s * eps, a * eps - s * x0
    torch.testing.assert_close(x0_from_v(scheduler, x_t, v, t), x0, rtol=1e-5, atol=2e-6)


class _Recorder(torch.nn.Module):
    """A denoiser that remembers what it was fed and answers a fixed nonlinear function of it."""

    def forward(self, x, t, channel):
        self.seen = (x.detach().clone(), t.clone(), channel.clone())
        return torch.tanh(x) * 0.5 + 0.01 * t[:, None, None] - 0.02 * channel[:, None, None]


def test_diffusion_loss_feeds_the_denoiser_the_noised_signal_and_regresses_v():
    """The loss is mse(model(add_noise(x0, eps, t)), v(x0, eps, t)) with t, eps the step's draws;
    catches a loss that feeds the clean signal (or the noise) to the denoiser."""
    module = SSMDPModule({"model": SMALL.__dict__, "diffusion": {}, "seed": 0})
    T = module.config.diffusion.num_train_timesteps
    abar = _abar_cosine(T)
    x0 = torch.randn(6, 1, 40, generator=torch.Generator().manual_seed(1))
    channel = torch.tensor([0, 1, 2, 3, 20, 21])
    model = _Recorder()
    loss = module.diffusion_loss(model, x0, channel, torch.Generator().manual_seed(5))
    # the step's draws, replayed from the same seed: t first, then the noise
    g = torch.Generator().manual_seed(5)
    t = torch.randint(0, T, (6,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    a = torch.tensor(np.sqrt(abar[t.numpy()]), dtype=torch.float32)[:, None, None]
    s = torch.tensor(np.sqrt(1 - abar[t.numpy()]), dtype=torch.float32)[:, None, None]
    x_t = a * x0 + s * eps
    seen_x, seen_t, seen_c = model.seen
    torch.testing.assert_close(seen_x, x_t, rtol=1e-5, atol=1e-6)  # the noised signal, not x0
    assert torch.equal(seen_t, t) and torch.equal(seen_c, channel)
    expected = ((torch.tanh(x_t) * 0.5 + 0.01 * t[:, None, None] - 0.02 * channel[:, None, None]
                 - (a * eps - s * x0)) ** 2).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-7)
    assert len(set(t.tolist())) > 1  # the draw covers several steps, so the per-sample coefficients matter


# --- SSMDP written out: conditioning, blocks, the sum of skips, the output head ---------------

def _step_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """DiffWave's sinusoidal embedding: [sin(t w_i), cos(t w_i)], w_i = 10000^(-i / (dim/2 - 1))."""
    half = dim // 2
    w = torch.tensor([10000.0 ** (-i / (half - 1)) for i in range(half)])
    return torch.cat([torch.sin(t.double()[:, None] * w.double()), torch.cos(t.double()[:, None] * w.double())], 1).float()


def _mlp(seq, x):
    """Linear -> SiLU -> Linear -> SiLU, written out."""
    l1, l2 = seq[0], seq[2]
    h = x @ l1.weight.T + l1.bias
    h = h * torch.sigmoid(h)
    h = h @ l2.weight.T + l2.bias
    return h * torch.sigmoid(h)


def _ssmdp_by_hand(model: SSMDP, x, t, channel, unfused_block):
    cond = (_mlp(model.step_mlp, _step_embedding(t, model.config.d_cond_embed))
            + _mlp(model.channel_mlp, model.channel_embed.weight[channel]))[:, None]  # [B, 1, D]
    lin = model.in_layer[0]
    h = torch.relu(x.transpose(1, 2) @ lin.weight.T + lin.bias)  # [B, L, H]
    skips = []
    for block in model.blocks:
        h, skip, _, _ = unfused_block(block, h, cond)
        skips.append(skip)
    total = torch.stack(skips).sum(0)  # every block's skip, not only the last
    hidden = torch.relu(total @ model.out_hidden.weight.T + model.out_hidden.bias)
    return (hidden @ model.out_final.weight.T + model.out_final.bias).transpose(1, 2), cond


def test_ssmdp_output_is_the_blocks_written_out_with_the_sum_of_skips(perturbed_ssmdp, unfused_block):
    """Catches an output head that sees only the last block's skip, and conditioning that drops
    the step or the channel embedding."""
    model = perturbed_ssmdp(SMALL, scale=0.3)
    x = torch.randn(3, 1, 32, generator=torch.Generator().manual_seed(2))
    t, channel = torch.tensor([0, 17, 49]), torch.tensor([4, 0, 21])
    with torch.no_grad():
        expected, cond = _ssmdp_by_hand(model, x, t, channel, unfused_block)
        torch.testing.assert_close(model.condition(t, channel), cond, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(model(x, t, channel), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("what", ["channel", "step"])
def test_channel_and_step_conditioning_each_change_the_output(perturbed_ssmdp, what):
    model = perturbed_ssmdp(SMALL, scale=0.3)
    x = torch.randn(1, 1, 32, generator=torch.Generator().manual_seed(3)).expand(2, 1, 32)
    t = torch.tensor([5, 5]) if what == "channel" else torch.tensor([1, 40])
    c = torch.tensor([2, 15]) if what == "channel" else torch.tensor([6, 6])
    with torch.no_grad():
        out = model(x, t, c)
        cond = model.condition(t, c)
    # the same input, two conditions: both the bias and the output must differ by far more than rounding
    assert (cond[0] - cond[1]).abs().max() > 1e-3
    assert (out[0] - out[1]).abs().max() > 1e-4 * out.abs().max()


# --- LFT: masks that differ per row, against each window alone -------------------------------

LFT_SMALL = LFTConfig(d_model=8, n_layer=2, n_pool=3, n_channels=22, n_tokens=2, n_heads=2, n_final=1, n_classes=3)


def test_fusion_block_mask_equals_attending_only_to_the_present_channels():
    torch.manual_seed(0)
    block = FusionBlock(8, 2, 2, 0.0).eval()
    tokens, channels = torch.randn(1, 4, 8), torch.randn(1, 22, 8)
    present = torch.ones(22, dtype=torch.bool)
    present[[0, 3, 7, 21]] = False
    with torch.no_grad():
        masked = block(tokens, channels, ~present[None])
        kept = block(tokens, channels[:, present], None)
    torch.testing.assert_close(masked, kept, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fusion", ["layer", "none", "mean"])
def test_lft_with_masks_that_differ_per_row_equals_each_window_alone(fusion):
    """Pools are folded into the batch in fuse(); a key-padding mask built in the wrong order there
    masks one window's missing channels in another window's pools."""
    torch.manual_seed(1)
    model = LatentFusionTransformer(LFTConfig(**{**LFT_SMALL.__dict__, "fusion": fusion})).eval()
    B = 3
    latents = torch.rand(B, 2, 3, 22, 8)
    present = torch.ones(B, 22, dtype=torch.bool)
    present[0, :5] = False
    present[1, 10:20] = False  # row 2 has every channel
    with torch.no_grad():
        together = model(latents, present)
        alone = torch.cat([model(latents[i:i + 1], present[i:i + 1]) for i in range(B)])
        if fusion == "layer":
            fused = model.fuse(latents, ~present)
            fused_alone = torch.cat([model.fuse(latents[i:i + 1], ~present[i:i + 1]) for i in range(B)])
            torch.testing.assert_close(fused, fused_alone, rtol=1e-5, atol=1e-6)
            # and each window fused alone equals attending to its present channels only
            for i in range(B):
                block_outputs = model.fusion_tokens.expand(1, 3, 2, 8).reshape(3, 2, 8)
                for n, block in enumerate(model.fusion_blocks):
                    block_outputs = block(block_outputs, latents[i, n][:, present[i]], None)
                torch.testing.assert_close(fused_alone[i], block_outputs.reshape(6, 8), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


# --- the label-fraction subset: a seeded stratified draw -------------------------------------

def _seeded_draw(labels, fraction, seed):
    """The documented draw: per class in ascending order, rng.choice without replacement of
    max(1, round(fraction * n_c)) of its indices, rng = default_rng(seed)."""
    rng = np.random.default_rng(seed)
    out = []
    for c in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == c)
        out += rng.choice(idx, size=max(1, int(round(fraction * len(idx)))), replace=False).tolist()
    return sorted(out)


def test_label_subset_is_its_seeded_draw_and_moves_with_the_seed():
    labels = np.repeat([0, 1, 2, 3], [40, 25, 9, 1])
    np.random.default_rng(0).shuffle(labels)
    for seed in (0, 4523):
        subset = label_subset(labels, 0.2, seed)
        assert subset.tolist() == _seeded_draw(labels, 0.2, seed)
        counts = np.bincount(labels[subset], minlength=4)
        assert counts.tolist() == [8, 5, 2, 1]  # round(0.2 n_c), at least one per class
    a, b = label_subset(labels, 0.2, 0), label_subset(labels, 0.2, 1)
    assert a.tolist() != b.tolist()
    first_lines = sorted(np.concatenate([np.flatnonzero(labels == c)[: len(np.flatnonzero(labels[a] == c))]
                                         for c in range(4)]).tolist())
    assert a.tolist() != first_lines  # not the first lines of each class
    assert label_subset(labels, 1.0, 3).tolist() == list(range(len(labels)))
    with pytest.raises(ValueError, match="label fraction"):
        label_subset(labels, 0.0, 0)


# --- EEG-to-image: the "judged" class comes from the stimulus, not from the reconstruction ----

def test_judged_class_is_the_judges_class_of_the_stimulus():
    """Hand-made: 3 classes, 2-way. Image 0's reconstruction scores [.6, .3, .1]; the judge calls
    its stimulus class 1 (beaten by one of two others: 2-way expectation 1/2); image 1's reconstruction
    [.2, .2, .6], stimulus judged 2 (wins: 1); image 2 [.1, .7, .2], stimulus judged 0 (loses to both: 0)."""
    probabilities = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.1, 0.7, 0.2]])
    stimulus_probabilities = np.array([[0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.5, 0.3, 0.2]])
    labels = np.array([0, 2, 1])
    rng = np.random.default_rng(0)
    features, images = rng.standard_normal((3, 5)), rng.random((3, 8, 8))
    out = reconstruction_metrics(probabilities, features, images, stimulus_probabilities, features + 0.1,
                                 images, labels, ways=(2, 3))
    assert out["top1_2way_judged"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert out["top1_3way_judged"] == pytest.approx((0 + 1 + 0) / 3)
    # against the dataset labels: image 0 wins (1), image 1 wins (1), image 2 wins (1)
    assert out["top1_2way"] == pytest.approx(1.0)


# --- the LFT written out: attention, layer norms, FFNs, fusion, positions, head ----------------

def _ln(norm, x):
    mean, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias


def _attention(mha, q, kv, drop=None):
    """Multi-head attention from its projection weights; ``drop`` [L_kv] True = not attended."""
    H, nh = q.shape[-1], mha.num_heads
    W, b = mha.in_proj_weight, mha.in_proj_bias
    Q, K, V = (x @ W[i * H:(i + 1) * H].T + b[i * H:(i + 1) * H] for i, x in enumerate((q, kv, kv)))
    split = lambda x: x.reshape(x.shape[0], nh, H // nh).transpose(0, 1)  # [nh, L, dh]
    scores = split(Q) @ split(K).transpose(1, 2) / math.sqrt(H // nh)
    if drop is not None:
        scores = scores.masked_fill(drop[None, None, :], float("-inf"))
    out = (torch.softmax(scores, -1) @ split(V)).transpose(0, 1).reshape(q.shape[0], H)
    return out @ mha.out_proj.weight.T + mha.out_proj.bias


def _ffn(ffn, x):
    lin1, lin2 = ffn[0], ffn[-1]
    return torch.nn.functional.gelu(x @ lin1.weight.T + lin1.bias) @ lin2.weight.T + lin2.bias


def _self_block(block, x):
    x = x + _attention(block.attn, _ln(block.norm1, x), _ln(block.norm1, x))
    return x + _ffn(block.ffn, _ln(block.norm2, x))


def _fusion_block(block, tokens, channels):
    h = _ln(block.norm_self, tokens)
    tokens = tokens + _attention(block.self_attn, h, h)
    tokens = tokens + _attention(block.cross_attn, _ln(block.norm_cross, tokens), channels)
    return tokens + _ffn(block.ffn, _ln(block.norm_ffn, tokens))


def _lft_by_hand(model, latents, present):
    """One window: latents [n, P, K, H], present [K] -> logits [C]."""
    c = model.config
    n, P, K, H = latents.shape
    if model.channel_embedding is not None:
        latents = latents + model.channel_embedding[model.channel_index]
    if c.fusion == "layer":  # each pool's tokens read only that pool's present channels
        pools = []
        for p in range(P):
            t = model.fusion_tokens[p]
            for i, block in enumerate(model.fusion_blocks):
                t = _fusion_block(block, t, latents[i, p][present])
            pools.append(t)
        tokens = torch.cat(pools)  # [P*T, H]
    else:
        zeroed = latents * present[None, None, :, None]  # missing channels are zero tokens
        tokens = zeroed.mean(0).reshape(P * K, H) if c.fusion == "mean" else zeroed.reshape(n * P * K, H)
    tokens = tokens + model.position
    for block in model.final_blocks:
        tokens = _self_block(block, tokens)
    return tokens.mean(0) @ model.head.weight.T + model.head.bias


@pytest.mark.parametrize("fusion, embed", [("layer", "none"), ("layer", "channel"), ("layer", "mirror"),
                                           ("mean", "none"), ("none", "channel")])
def test_lft_is_its_blocks_written_out(fusion, embed):
    """Catches a residual subtracted, a lost GELU, the mask not passed to the fusion, positions or
    channel embeddings subtracted, missing channels filled with something other than zero."""
    torch.manual_seed(2)
    model = LatentFusionTransformer(LFTConfig(**{**LFT_SMALL.__dict__, "fusion": fusion, "channel_embed": embed,
                                                 "n_final": 2})).eval()
    latents = torch.rand(2, 2, 3, 22, 8) + 0.5
    present = torch.ones(2, 22, dtype=torch.bool)
    present[0, [1, 4, 9]] = False
    with torch.no_grad():
        got = model(latents, present)
        for b in range(2):
            torch.testing.assert_close(got[b], _lft_by_hand(model, latents[b], present[b]), rtol=1e-4, atol=1e-5)


def test_lft_configuration_checks():
    assert LFTConfig(channel_norm=True).channel_norm == "layer" and LFTConfig(channel_norm=False).channel_norm == "none"
    assert LFTConfig(channel_norm="standard").channel_norm == "standard"
    assert LFTConfig(layers=[0, 19]).layers == (0, 19)
    with pytest.raises(ValueError, match="outside the backbone"):
        LFTConfig(layers=[20])
    assert LatentFusionTransformer().config == LFTConfig()
    model = LatentFusionTransformer(LFTConfig(**{**LFT_SMALL.__dict__, "channel_embed": "channel"}))
    assert "channel_index" not in model.state_dict()  # rebuilt from the config, not saved
    with pytest.raises(ValueError, match="do not fit the LFT"):
        model(torch.rand(1, 2, 3, 22, 4))  # the width alone is wrong
