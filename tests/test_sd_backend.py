"""The real-scale image side read from local folders (eegdm_utils.e2i.sd_backend): tiny Stable-Diffusion-
and CLIP-shaped folders written with random weights load offline with the shapes the methods need, and
a missing or malformed folder is an error naming the folder and what it lacks."""

import json
import shutil

import numpy as np
import pytest
import torch

from eegdm_utils.e2i.sd_backend import (BackendError, check_clip_folder, check_sd_folder, load_clip, load_sd,
                                        write_tiny_clip, write_tiny_sd)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return write_tiny_sd(root / "sd"), write_tiny_clip(root / "clip")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a read that tried the network would fail
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def test_a_tiny_stable_diffusion_folder_loads_with_the_shapes_the_methods_use(tiny):
    sd = load_sd(tiny[0])
    assert (sd.context_width, sd.image_size) == (32, 16)
    assert sd.latent_scale == pytest.approx(sd.vae.config.scaling_factor)
    assert sum(p.numel() for p in sd.unet.parameters()) < 100_000
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        latents = sd.vae.encode(images).latent_dist.mean * sd.latent_scale  # [2, 4, 8, 8]
        assert latents.shape == (2, 4, 8, 8)
        context = torch.randn(2, 5, sd.context_width)  # five EEG tokens projected to the context width
        eps = sd.unet(latents, torch.tensor([10, 500]), encoder_hidden_states=context).sample
        assert eps.shape == latents.shape
        other = sd.unet(latents, torch.tensor([10, 500]), encoder_hidden_states=torch.randn(2, 5, 32)).sample
        assert not torch.allclose(eps, other)  # the cross-attention reads the context
        assert sd.vae.decode(latents / sd.latent_scale).sample.shape == images.shape
    assert not any(p.requires_grad for p in sd.vae.parameters())


def test_a_tiny_clip_folder_loads_and_embeds_images(tiny):
    model, processor = load_clip(tiny[1])
    images = [np.random.default_rng(i).integers(0, 255, (24, 24, 3), dtype=np.uint8) for i in range(3)]
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    assert pixels.shape == (3, 3, 16, 16)
    with torch.no_grad():
        assert model(pixel_values=pixels).image_embeds.shape == (3, 16)


def test_a_missing_folder_or_part_is_named(tiny, tmp_path):
    with pytest.raises(BackendError, match="e2i_sd_path ''"):
        check_sd_folder("")
    with pytest.raises(BackendError, match="e2i_clip_path .*not a folder"):
        check_clip_folder(tmp_path / "nowhere")
    broken = tmp_path / "sd"
    shutil.copytree(tiny[0], broken)
    shutil.rmtree(broken / "vae")
    (broken / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(BackendError, match=r"missing unet/diffusion_pytorch_model.safetensors \(or .bin\), vae/config.json"):
        load_sd(broken)
    clip = tmp_path / "clip"
    shutil.copytree(tiny[1], clip)
    (clip / "preprocessor_config.json").unlink()
    with pytest.raises(BackendError, match="missing preprocessor_config.json"):
        load_clip(clip)


def test_a_malformed_or_mismatched_configuration_is_named(tiny, tmp_path):
    broken = tmp_path / "sd"
    shutil.copytree(tiny[0], broken)
    (broken / "unet" / "config.json").write_text("{not json")
    with pytest.raises(BackendError, match=r"unet/config.json: not a readable JSON"):
        check_sd_folder(broken)
    config = json.loads((tiny[0] / "unet" / "config.json").read_text())
    (broken / "unet" / "config.json").write_text(json.dumps({**config, "in_channels": 8}))
    with pytest.raises(BackendError, match="the UNet takes 8 channels, the VAE's latents have 4"):
        check_sd_folder(broken)
    (broken / "unet" / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "cross_attention_dim"}))
    with pytest.raises(BackendError, match="no cross_attention_dim"):
        check_sd_folder(broken)
    clip = tmp_path / "clip"
    shutil.copytree(tiny[1], clip)
    clip_config = json.loads((clip / "config.json").read_text())
    (clip / "config.json").write_text(json.dumps({k: v for k, v in clip_config.items() if k != "projection_dim"}))
    with pytest.raises(BackendError, match="no projection_dim"):
        check_clip_folder(clip)


def test_the_latent_image_side_round_trips_shapes_and_fits_the_small_backends_interface(tiny):
    from eegdm_utils.e2i.generator import freeze_for_eeg_finetuning, make_controlnet, predict_noise
    from eegdm_utils.e2i.sd_backend import decode_latents, encode_latents, sd_generator, sd_schedulers, to_sd_images

    sd = load_sd(tiny[0])
    digits = torch.rand(5, 1, 8, 8) * 2 - 1  # grey 8x8 images, as the simulated stimuli
    x = to_sd_images(digits, sd.image_size)
    assert x.shape == (5, 3, 16, 16) and torch.equal(x[:, 0], x[:, 2])  # grey copied to every channel
    latents = encode_latents(sd, digits, batch=2)
    assert latents.shape == (5, 4, 8, 8)
    assert torch.allclose(latents, encode_latents(sd, digits, batch=5), atol=1e-5)  # the mean: no sampling noise
    assert decode_latents(sd, latents).shape == (5, 3, 16, 16)
    ddpm, ddim = sd_schedulers(sd)
    assert torch.allclose(ddpm.betas, sd.scheduler.betas)  # the pretrained schedule, not a new one
    state = torch.random.get_rng_state()
    generator = sd_generator(sd, n_classes=10, prompt_tokens=3, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's random state is left alone
    assert generator.unet is sd.unet and generator.prompts.shape == (11, 3, sd.context_width)
    assert torch.equal(generator.prompts, sd_generator(sd, 10, 3, seed=1).prompts)
    context = generator.class_context(torch.tensor([0, 3, 9, 10, 2]))  # the last: the null prompt
    controlnet = make_controlnet(sd.unet)
    layout = torch.rand(5, 1, 8, 8)  # a structure map at the latent resolution
    t = torch.tensor([1, 10, 100, 500, 900])
    with torch.no_grad():
        eps = predict_noise(generator.unet, ddpm.add_noise(latents, torch.randn_like(latents), t), t, context,
                            controlnet, layout)
    assert eps.shape == latents.shape
    trainable = freeze_for_eeg_finetuning(sd.unet)
    assert trainable and all(".attn2." in n or ".norm2." in n for n in trainable)


def test_clip_targets_are_the_models_embeddings_of_the_images_as_pictures(tiny):
    from eegdm_utils.e2i.sd_backend import clip_image_embeddings

    model, processor = load_clip(tiny[1])
    images = torch.rand(5, 1, 8, 8) * 2 - 1
    embeddings = clip_image_embeddings(model, processor, images, batch=2)
    assert embeddings.shape == (5, 16)
    pictures = [((images[i, 0].numpy() + 1) * 127.5).round().astype(np.uint8) for i in range(5)]  # by hand
    pixels = processor(images=[np.stack([p] * 3, axis=-1) for p in pictures], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        assert torch.allclose(embeddings, model(pixel_values=pixels).image_embeds, atol=1e-5)
    assert not torch.allclose(embeddings[0], embeddings[1])
