"""Stages B and C on EEG (eegdm_utils.e2i.pipeline) with tiny models: the loss parts of each
method, seeded warm-up and fine-tuning, DDIM sampling with classifier-free guidance."""

import pytest
import torch

from eegdm_utils.e2i.eeg_conditioning import (ConditioningConfig, EEGConditioner, alignment_loss,
                                              contrastive_alignment_loss)
from eegdm_utils.e2i.generator import (ClassTokenGenerator, GeneratorConfig, make_controlnet, make_schedulers,
                                       predict_noise)
from eegdm_utils.e2i.masked_eeg import MaskedEEGConfig, MaskedEEGModel
from eegdm_utils.e2i.pipeline import (EEGToImage, FinetuneSettings, ImageSide, Method, PairedTensors, context_loss_gap,
                                      ddim_sample, finetune, finetune_loss, reconstruct, warm_up)
from eegdm_utils.e2i.training import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

GENERATOR = GeneratorConfig(image_size=8, block_out_channels=(16, 32), context_dim=32, attention_head_dim=8,
                            prompt_tokens=2, train_timesteps=100)
ENCODER = MaskedEEGConfig(n_channels=4, n_samples=32, patch=8, dim=16, depth=1, heads=2, decoder_dim=16, decoder_depth=1)
SETTINGS = FinetuneSettings(head_steps=3, head_batch=8, steps=3, batch=8, lr=1e-2)
DREAM = Method("DreamDiffusion")
GUIDED = Method("structure-guided", eeg_tokens=False, semantic=True, structural=True)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    generator = ClassTokenGenerator(GENERATOR).eval().requires_grad_(False)
    ddpm, ddim = make_schedulers(GENERATOR)
    side = ImageSide(generator, make_controlnet(generator.unet).eval().requires_grad_(False), ddpm, ddim)
    images = torch.rand(12, 1, 8, 8) * 2 - 1
    data = PairedTensors(images=images, labels=torch.arange(12) % 10, layouts=torch.randn(12, 4, 4),
                         image_embeddings=torch.randn(12, 16), eeg=torch.randn(24, 4, 32),
                         trial_image=torch.arange(24) % 12)
    return side, data


def make_conditioner(method: Method) -> EEGConditioner:
    return EEGConditioner(MaskedEEGModel(ENCODER), ConditioningConfig(
        eeg_tokens=method.eeg_tokens, semantic=method.semantic, structural=method.structural, encoder_dim=16,
        n_tokens=4, context_dim=32, embed_dim=16, image_size=8))


def test_loss_parts_follow_the_method(setup):
    side, data = setup
    trials, g = torch.arange(6), torch.Generator().manual_seed(0)
    parts = {}
    for method in (DREAM, GUIDED, Method("no alignment", eeg_tokens=False, semantic=True, align=False)):
        model = EEGToImage(method, make_conditioner(method), side)
        total, parts[method.name] = finetune_loss(model, data, trials, side.ddpm, SETTINGS, g, True)
        weights = {"diffusion": 1.0, "align": SETTINGS.align_weight, "semantic": SETTINGS.semantic_weight,
                   "layout": SETTINGS.layout_weight}
        assert total.item() == pytest.approx(sum(weights[k] * v.item() for k, v in parts[method.name].items()), rel=1e-6)
    assert set(parts["DreamDiffusion"]) == {"align", "diffusion"}
    assert set(parts["structure-guided"]) == {"align", "semantic", "layout", "diffusion"}
    assert set(parts["no alignment"]) == {"semantic", "diffusion"}
    conditioner = make_conditioner(DREAM)
    cosine = EEGToImage(DREAM, conditioner, side).eval()
    info_nce = EEGToImage(Method("SGDM-style", contrastive=True), conditioner, side).eval()
    _, cosine_parts = finetune_loss(cosine, data, trials, side.ddpm, SETTINGS, g, False)
    _, contrastive_parts = finetune_loss(info_nce, data, trials, side.ddpm, SETTINGS, g, False)
    with torch.no_grad():
        predicted, target = conditioner.eval()(data.eeg[trials]).image_embedding, data.image_embeddings[data.trial_image[trials]]
    assert cosine_parts["align"].item() == pytest.approx(alignment_loss(predicted, target).item(), rel=1e-5)
    expected = contrastive_alignment_loss(predicted, target, data.trial_image[trials], SETTINGS.temperature)
    assert contrastive_parts["align"].item() == pytest.approx(expected.item(), rel=1e-5)
    warm = EEGToImage(DREAM, make_conditioner(DREAM), side)
    _, heads = finetune_loss(warm, data, trials, side.ddpm, SETTINGS, g, False, guidance_heads=True)
    assert set(heads) == {"align", "semantic", "layout"}  # the warm-up: no diffusion, every head


def test_warm_up_and_finetune_depend_on_the_seed_only(setup, tmp_path):
    side, data = setup
    train_trials = torch.arange(18)
    first = warm_up(GUIDED, make_conditioner, data, train_trials, side, SETTINGS, seed=3)
    torch.rand(100)  # whatever ran before must not matter
    again = warm_up(GUIDED, make_conditioner, data, train_trials, side, SETTINGS, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    other = warm_up(GUIDED, make_conditioner, data, train_trials, side, SETTINGS, seed=4)
    assert not all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), other.state_dict().values()))

    model = finetune(GUIDED, first, data, train_trials, side, SETTINGS, seed=3, checkpoint_dir=tmp_path,
                     checkpoint_extra={"base": "generator.pt"})
    assert not model.training and set(model.history) >= {"loss", "diffusion", "semantic", "layout"}
    saved, payload = load_checkpoint(tmp_path / "structure-guided_seed3.pt", Method)
    assert saved == GUIDED and payload["extra"]["base"] == "generator.pt"
    assert set(payload["states"]) == {"trainable"}  # weights only: a paper-size optimizer state is 2x the weights
    trainable = payload["states"]["trainable"]
    assert any(n.startswith("controlnet.") for n in trainable) and any(".attn2." in n for n in trainable)
    assert not any(".attn1." in n or ".resnets." in n for n in trainable if n.startswith("generator."))
    # the image side the methods share is left as it was
    assert not any(p.requires_grad for p in side.generator.parameters())


def test_ddim_sampling_is_seeded_and_guidance_reads_the_null_context(setup):
    side, _ = setup
    gen = side.generator
    context, null = gen.class_context(torch.tensor([1, 2, 3])), gen.null_context(3)
    other_null = gen.class_context(torch.tensor([7, 7, 7]))
    sample = lambda scale, seed, n=null: ddim_sample(gen.unet, side.ddim, context, n, scale, seed, 8, 3)
    a = sample(3.0, 0)
    assert a.shape == (3, 1, 8, 8) and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, sample(3.0, 0)) and not torch.equal(a, sample(3.0, 1))
    assert torch.equal(sample(1.0, 0), sample(1.0, 0, other_null))  # scale 1: the null branch is not used
    assert not torch.equal(a, sample(3.0, 0, other_null))


def test_guided_sampling_is_the_written_out_classifier_free_guidance(setup):
    """One UNet call for the conditional and the null prompt together gives the images of the
    two-call loop written out here (uncond + scale * (cond - uncond), the layout in both)."""
    side, _ = setup
    gen, controlnet = side.generator, side.controlnet
    context, null = gen.class_context(torch.tensor([1, 2, 3])), gen.null_context(3)
    control = torch.randn(3, 1, 8, 8)
    for net, layout in ((None, None), (controlnet, control)):
        x = torch.randn((3, 1, 8, 8), generator=torch.Generator().manual_seed(4))
        side.ddim.set_timesteps(3)
        with torch.no_grad():
            for t in side.ddim.timesteps:
                cond = predict_noise(gen.unet, x, t, context, net, layout)
                uncond = predict_noise(gen.unet, x, t, null, net, layout)
                x = side.ddim.step(uncond + 2.5 * (cond - uncond), t, x).prev_sample
        sampled = ddim_sample(gen.unet, side.ddim, context, null, 2.5, 4, 8, 3, net, layout)
        torch.testing.assert_close(sampled, x.clamp(-1, 1), atol=1e-5, rtol=1e-4)
        # batches of 2 images: the same images
        torch.testing.assert_close(ddim_sample(gen.unet, side.ddim, context, null, 2.5, 4, 8, 3, net, layout, batch=2),
                                   sampled, atol=1e-5, rtol=1e-4)


def test_reconstruct_repeats_and_switches_branches(setup):
    side, data = setup
    model = EEGToImage(GUIDED, make_conditioner(GUIDED), side).eval()
    trials = [0, 5]
    images = reconstruct(model, data, trials, 2.0, seed=0, ddim=side.ddim, steps=3, repeats=3)
    assert images.shape == (6, 1, 8, 8)
    plain = reconstruct(model, data, trials, 2.0, seed=0, ddim=side.ddim, steps=3)
    no_semantic = reconstruct(model, data, trials, 2.0, seed=0, ddim=side.ddim, steps=3, semantic=False)
    assert not torch.equal(plain, no_semantic)


def test_learning_curve_points_and_the_context_gap(setup):
    side, data = setup
    conditioner = make_conditioner(DREAM)
    seen = []

    def evaluate(model, n):
        seen.append((n, model.training))
        return context_loss_gap(model, data, torch.arange(6), side.ddpm, seed=0)

    model = finetune(DREAM, conditioner, data, torch.arange(18), side, SETTINGS, seed=0, steps=4, evaluate=evaluate,
                     evaluate_at=[0, 2, 4])
    assert [e["step"] for e in model.evaluations] == [0, 2, 4] and [n for n, _ in seen] == [0, 2, 4]
    assert not any(training for _, training in seen)  # scored in eval mode
    first = model.evaluations[0]
    assert first["gap"] == pytest.approx(first["null"] - first["eeg"]) and first["eeg"] > 0
    again = context_loss_gap(model, data, torch.arange(6), side.ddpm, seed=0)
    assert again == context_loss_gap(model, data, torch.arange(6), side.ddpm, seed=0)  # same noise for the same seed
    with pytest.raises(ValueError, match="evaluate_at"):
        finetune(DREAM, conditioner, data, torch.arange(18), side, SETTINGS, seed=0, steps=2, evaluate=evaluate,
                 evaluate_at=[5])
