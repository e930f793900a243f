"""The EEG-to-image models: masked signal modelling, the freezing of stage-B fine-tuning, the
null context, checkpoints."""

import copy

import numpy as np
import pytest
import torch

from eegdm_utils.e2i.eeg_conditioning import (ConditioningConfig, EEGConditioner, alignment_loss,
                                              contrastive_alignment_loss)
from eegdm_utils.e2i.generator import (ClassTokenGenerator, GeneratorConfig, diffusion_loss, freeze_for_eeg_finetuning,
                                       is_cross_attention_parameter, make_controlnet, make_schedulers, predict_noise)
from eegdm_utils.e2i.image_models import ImageEmbedder, ImageNetConfig, nt_xent
from eegdm_utils.e2i.masked_eeg import MaskedEEGConfig, MaskedEEGModel, load_encoder, patchify, unpatchify
from eegdm_utils.e2i.training import RunRecord, loop, load_checkpoint, save_checkpoint, train, train_or_load

# Small problems: one BLAS/torch thread is faster, and fair to the other tests.
pytestmark = pytest.mark.usefixtures("one_thread")


TINY_GENERATOR = GeneratorConfig(image_size=8, block_out_channels=(16, 32), context_dim=32, attention_head_dim=8,
                                 prompt_tokens=2, train_timesteps=100)
TINY_ENCODER = MaskedEEGConfig(n_channels=4, n_samples=32, patch=8, dim=16, depth=1, heads=2, decoder_dim=16,
                               decoder_depth=1)


def test_patchify_roundtrip_and_token_layout():
    x = torch.arange(2 * 3 * 16, dtype=torch.float32).view(2, 3, 16)
    tokens = patchify(x, 4)
    assert tokens.shape == (2, 4, 12)
    assert torch.equal(tokens[0, 1], x[0, :, 4:8].reshape(-1))  # token 1: all channels of samples 4..7
    assert torch.equal(unpatchify(tokens, 3), x)
    with pytest.raises(ValueError, match="multiple"):
        patchify(x, 5)


def test_masked_loss_only_counts_hidden_tokens():
    torch.manual_seed(0)
    model = MaskedEEGModel(TINY_ENCODER)
    x = torch.randn(6, 4, 32)
    g = torch.Generator().manual_seed(1)
    prediction, target, hidden = model.reconstruct(x, 0.75, generator=g)
    assert prediction.shape == target.shape == (6, 4, 32) and hidden.shape == (6, 4)
    assert (hidden.sum(1) == 3).all()  # 75% of 4 tokens hidden in every trial
    # changing the signal of a visible token only moves the loss through the encoder, never its target
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    loss = model.masked_loss(x, 0.75, generator=g1)
    expected = (((prediction - target) ** 2).mean(-1) * hidden).sum() / hidden.sum()
    assert torch.isclose(loss, expected)
    model.eval()
    assert model.encode(x).shape == (6, 4, 16)
    assert model.masked_loss(x, 0.25, generator=g2).item() > 0


def test_pretraining_reduces_masked_loss_and_checkpoint_roundtrip(tmp_path):
    from eegdm_utils.e2i.masked_eeg import pretrain, save_encoder

    torch.manual_seed(0)
    t = torch.linspace(0, 1, 32)
    x = torch.sin(2 * np.pi * (3 + torch.rand(256, 4, 1) * 3) * t) + 0.05 * torch.randn(256, 4, 32)
    model = MaskedEEGModel(TINY_ENCODER)
    model.set_normalization(x.numpy())
    before = model.masked_loss(x, generator=torch.Generator().manual_seed(0)).item()
    result = pretrain(model, {"visual": x}, loop(60, 64, 3e-3, warmup_steps=5), seed=0)
    after = model.masked_loss(x, generator=torch.Generator().manual_seed(0)).item()
    assert after < 0.8 * before
    path = save_encoder(tmp_path / "enc.pt", model, 60, result)
    loaded, payload = load_encoder(path)
    assert payload["step"] == 60 and loaded.config == model.config
    assert torch.equal(loaded.encode(x[:2]), model.eval().encode(x[:2]))


def test_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="run 80"):
        load_encoder(tmp_path / "missing.pt", "run 80 first")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        load_checkpoint(tmp_path / "bad.pt", MaskedEEGConfig)
    save_checkpoint(tmp_path / "other.pt", GeneratorConfig(), 0, {})
    with pytest.raises(ValueError, match="expected a MaskedEEGConfig"):
        load_checkpoint(tmp_path / "other.pt", MaskedEEGConfig)


def test_train_or_load_reuses_only_matching_runs(tmp_path):
    calls = []

    def make():
        layer = torch.nn.Linear(2, 1)

        def fit():
            calls.append(1)
            return train(layer.parameters(), lambda s: (layer(torch.ones(4, 2)).pow(2).mean(), {}),
                         loop(3, 64, 1e-3, warmup_steps=1), log_every=1)
        return layer, fit

    layer, fit = make()
    train_or_load(tmp_path / "m.pt", RunRecord("m", {"steps": 3}), layer, fit)
    again, fit2 = make()
    result = train_or_load(tmp_path / "m.pt", RunRecord("m", {"steps": 3}), again, fit2)
    assert result["loaded"] and len(calls) == 1 and torch.equal(again.weight, layer.weight)
    other, fit3 = make()
    train_or_load(tmp_path / "m.pt", RunRecord("m", {"steps": 4}), other, fit3)
    assert len(calls) == 2


def test_null_context_tiling_leaves_the_unet_unchanged():
    torch.manual_seed(0)
    gen = ClassTokenGenerator(TINY_GENERATOR).eval()
    x, t = torch.randn(3, 1, 8, 8), torch.tensor([5, 50, 90])
    with torch.no_grad():
        short = gen.unet(x, t, encoder_hidden_states=gen.null_context(3)).sample
        tiled = gen.unet(x, t, encoder_hidden_states=gen.null_context(3, 6)).sample
    assert torch.allclose(short, tiled, atol=1e-5)
    with pytest.raises(ValueError, match="multiple"):
        gen.null_context(3, 5)


def test_freeze_selects_cross_attention_and_its_norms_only():
    gen = ClassTokenGenerator(TINY_GENERATOR)
    names = freeze_for_eeg_finetuning(gen.unet)
    assert names and all(".attn2." in n or ".norm2." in n for n in names)
    assert all("transformer_blocks" in n for n in names)  # not the ResNet blocks' norm2
    assert not any(is_cross_attention_parameter(n) for n in ("down_blocks.0.resnets.0.norm2.weight",
                                                             "mid_block.attentions.0.transformer_blocks.0.attn1.to_q.weight"))
    frozen = [n for n, p in gen.unet.named_parameters() if not p.requires_grad]
    assert any("attn1" in n for n in frozen) and any("resnets" in n for n in frozen)


@pytest.mark.parametrize("structural", [False, True])
def test_stage_b_finetuning_changes_only_the_intended_parameters(structural):
    """A few fine-tuning steps with the diffusion + alignment loss: in the UNet only cross-attention
    and the norms before it move; the prompt table and the frozen image embedder do not; the EEG
    side (and the ControlNet when present) does."""
    torch.manual_seed(0)
    gen = ClassTokenGenerator(TINY_GENERATOR)
    ddpm, _ = make_schedulers(TINY_GENERATOR)
    embedder = ImageEmbedder(ImageNetConfig(channels=8, features=16)).eval().requires_grad_(False)
    freeze_for_eeg_finetuning(gen.unet)
    gen.prompts.requires_grad_(False)
    conditioner = EEGConditioner(MaskedEEGModel(TINY_ENCODER), ConditioningConfig(
        semantic=True, structural=structural, encoder_dim=16, n_tokens=4, context_dim=32, embed_dim=16, image_size=8))
    controlnet = make_controlnet(gen.unet) if structural else None
    before = {"unet": copy.deepcopy(gen.unet.state_dict()), "embedder": copy.deepcopy(embedder.state_dict()),
              "prompts": gen.prompts.detach().clone(), "encoder": copy.deepcopy(conditioner.encoder.state_dict())}
    eeg, images = torch.randn(8, 4, 32), torch.rand(8, 1, 8, 8) * 2 - 1
    g = torch.Generator().manual_seed(0)

    def loss_fn(step):
        readout = conditioner(eeg)
        context = conditioner.context(readout, gen)
        loss = diffusion_loss(gen.unet, ddpm, images, context, g, controlnet, conditioner.control(readout))
        return loss + alignment_loss(readout.image_embedding, embedder(images)), {}

    modules = [gen, conditioner] + ([controlnet] if controlnet is not None else [])
    parameters = [p for m in modules for p in m.parameters() if p.requires_grad]
    train(parameters, loss_fn, loop(3, 64, 1e-2, warmup_steps=1), log_every=1)

    after = gen.unet.state_dict()
    changed = {n for n in after if not torch.equal(after[n], before["unet"][n])}
    assert changed, "cross-attention should have been trained"
    assert all(is_cross_attention_parameter(n) for n in changed), sorted(changed)
    assert any(".attn2.to_k" in n for n in changed) and any(".norm2." in n for n in changed)
    assert all(torch.equal(v, before["embedder"][k]) for k, v in embedder.state_dict().items())
    assert torch.equal(gen.prompts, before["prompts"])
    assert any(not torch.equal(v, before["encoder"][k]) for k, v in conditioner.encoder.state_dict().items())


def test_controlnet_starts_as_a_no_op():
    torch.manual_seed(0)
    gen = ClassTokenGenerator(TINY_GENERATOR).eval()
    controlnet = make_controlnet(gen.unet).eval()
    x, t, context = torch.randn(2, 1, 8, 8), torch.tensor([10, 60]), gen.class_context(torch.tensor([1, 2]))
    with torch.no_grad():
        plain = predict_noise(gen.unet, x, t, context)
        controlled = predict_noise(gen.unet, x, t, context, controlnet, torch.randn(2, 1, 8, 8))
    assert torch.allclose(plain, controlled, atol=1e-6)  # zero convolutions: no effect before training


def test_nt_xent_prefers_matching_views():
    z = torch.nn.functional.normalize(torch.randn(16, 8), dim=-1)
    assert nt_xent(z, z, 0.1) < nt_xent(z, z[torch.randperm(16)], 0.1)


def test_corpus_segments_resample_and_skip_missing_channels():
    from eegdm_utils.e2i.masked_eeg import corpus_segments

    rng = np.random.default_rng(0)
    windows = rng.normal(size=(5, 22, 1000)).astype(np.float32)
    windows[1, 3] = np.nan  # a missing channel: that window is never used
    t = np.arange(1000) / 200.0
    windows[0] = np.sin(2 * np.pi * 10 * t)  # a 10 Hz window
    segments = corpus_segments(windows, 50, 128, sfreq_in=200.0, sfreq_out=256.0, seed=0)
    assert segments.shape == (50, 22, 128) and np.isfinite(segments).all()
    assert np.allclose(segments.std(axis=-1), 1.0, atol=1e-3)
    only_sine = corpus_segments(windows[:1], 3, 128, 200.0, 256.0, seed=1)
    spectrum = np.abs(np.fft.rfft(only_sine[0, 0]))
    assert np.argmax(spectrum) * 256.0 / 128 == pytest.approx(10.0, abs=2.0)  # still 10 Hz after resampling
    with pytest.raises(ValueError, match="no window without missing channels"):
        corpus_segments(windows[1:2], 3, 128, 200.0, 256.0, seed=0)


def test_contrastive_alignment_singles_out_the_image_and_treats_repeats_as_positives():
    torch.manual_seed(0)
    images = torch.nn.functional.normalize(torch.randn(6, 16), dim=-1)
    ids = torch.arange(6)
    matched = contrastive_alignment_loss(images, images, ids, temperature=0.05)
    shuffled = contrastive_alignment_loss(images[torch.tensor([1, 2, 3, 4, 5, 0])], images, ids, temperature=0.05)
    assert matched < 0.05 < 1.0 < shuffled  # its own image wins against the others in the batch
    # two trials of one image: each the other's positive, so a perfect match stays near zero loss
    repeated = torch.tensor([0, 0, 1, 2, 3, 4])
    targets = images[repeated]
    assert contrastive_alignment_loss(targets, targets, repeated, temperature=0.05) < 0.05
    # without the mask, the duplicate would be a negative as close as the positive: log 2 for both of
    # its rows in each direction, (2 / 6) log 2 on average
    unmasked = contrastive_alignment_loss(targets, targets, torch.arange(6), temperature=0.05)
    assert unmasked == pytest.approx(np.log(2) / 3, abs=0.02)
    # the 1 - cosine loss cannot tell an image from a near neighbour of its class; InfoNCE can
    neighbour = torch.nn.functional.normalize(images[:1] + 0.2 * torch.randn(1, 16), dim=-1)
    pair = torch.cat([images[:1], neighbour])
    assert contrastive_alignment_loss(pair.flip(0), pair, torch.arange(2), 0.05) > contrastive_alignment_loss(pair, pair, torch.arange(2), 0.05)


def test_token_patch_is_the_smallest_divisor_from_eight():
    from eegdm_utils.e2i.masked_eeg import token_patch

    assert [token_patch(n) for n in (128, 100, 96, 7, 13)] == [8, 10, 8, 7, 13]
    with pytest.raises(ValueError):
        token_patch(0)
