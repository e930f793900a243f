"""The image side of notebook 85 (eegdm_utils.e2i.image_side) with tiny models: what each loop
trains, what it leaves alone, that it draws training images only, and the prompted samplers;
and the paired dataset's one-trial-per-image pick."""

import numpy as np
import pytest
import torch

from eegdm_utils.e2i.generator import (ClassTokenGenerator, GeneratorConfig, is_cross_attention_parameter,
                                       make_controlnet, make_schedulers)
from eegdm_utils.e2i.image_models import ImageNetConfig, Judge, judge_loss
from eegdm_utils.e2i.image_side import (ImageSet, Stage, class_prompted, embedding_prompted, fit_class_token_generator,
                                        fit_embedding_prompt, fit_image_model, fit_layout_controlnet)
from eegdm_utils.e2i.paired_data import load_paired_dataset, save_paired_dataset
from eegdm_utils.e2i.stimuli import ImageSplit, load_digits_images
from eegdm_utils.e2i.visual_eeg import VisualEEGConfig, simulate_visual_eeg

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIG = GeneratorConfig(image_size=8, block_out_channels=(16, 32), context_dim=32, attention_head_dim=8,
                         prompt_tokens=2, train_timesteps=100)
TRAIN = torch.arange(0, 24, 2)  # the even images train; the odd ones must never be drawn


@pytest.fixture(scope="module")
def images():
    """24 images, each holding its own index (so a batch says which images it drew), two classes."""
    index = torch.arange(24, dtype=torch.float32)
    return index[:, None, None, None].expand(24, 1, 8, 8).clone() / 24.0, torch.arange(24) % 2


def new_generator(seed=0):
    torch.manual_seed(seed)
    return ClassTokenGenerator(CONFIG)


def state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_image_models_draw_training_images_only_and_are_seeded(images):
    pixels, labels = images
    seen = []

    def loss(model, x, y, g):
        seen.append(torch.round(x[:, 0, 0, 0] * 24).long())
        return judge_loss(model, x, y, g)

    runs = []
    for seed in (0, 0, 1):
        torch.manual_seed(0)
        judge = Judge(ImageNetConfig(channels=4, features=8, n_classes=2))
        fit_image_model(judge, loss, ImageSet(pixels, labels, TRAIN), Stage(steps=5, batch=4, lr=2e-3, seed=seed))
        runs.append(state(judge))
    drawn = torch.cat(seen)
    assert set(drawn.tolist()) <= set(TRAIN.tolist()) and len(set(drawn.tolist())) > 4
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])  # same seed, same model
    assert any(not torch.equal(runs[0][k], runs[2][k]) for k in runs[0])  # the seed draws other batches


def test_stage_b_prompt_dropout_and_the_ema_weights(images):
    pixels, labels = images
    ddpm, _ = make_schedulers(CONFIG)
    start = new_generator().prompts.detach().clone()
    # every prompt dropped: the class rows get no gradient, only AdamW's decay (a common factor)
    dropped = new_generator()
    result = fit_class_token_generator(dropped, ddpm, ImageSet(pixels, labels, TRAIN),
                                       Stage(steps=4, batch=4, lr=1e-2, seed=0, cond_dropout=1.0), ema_beta=0.5)
    ratio = dropped.prompts.detach()[:2] / start[:2]
    assert torch.allclose(ratio, ratio.flatten()[0], atol=1e-6) and ratio.flatten()[0] < 1
    assert not torch.allclose(dropped.prompts[dropped.null_index] / start[-1], ratio.flatten()[0])
    # the generator ends holding the EMA copy's weights
    ema = result["ema"].state_dict()
    assert all(torch.equal(v, ema[k]) for k, v in dropped.state_dict().items())
    # no dropout: the class rows learn, the null row only decays
    kept = new_generator()
    fit_class_token_generator(kept, ddpm, ImageSet(pixels, labels, TRAIN),
                              Stage(steps=4, batch=4, lr=1e-2, seed=0, cond_dropout=0.0), ema_beta=0.0)
    null_ratio = kept.prompts.detach()[kept.null_index] / start[-1]
    assert torch.allclose(null_ratio, null_ratio.flatten()[0], atol=1e-6)
    assert not torch.allclose(kept.prompts.detach()[0] / start[0], null_ratio.flatten()[0], atol=1e-4)


def test_controlnet_training_moves_the_controlnet_only(images):
    pixels, labels = images
    ddpm, _ = make_schedulers(CONFIG)
    generator = new_generator().requires_grad_(False)
    controlnet = make_controlnet(generator.unet)
    before_generator, before_controlnet = state(generator), state(controlnet)
    layouts = torch.randn(24, 4, 4)
    fit_layout_controlnet(controlnet, generator, ddpm, ImageSet(pixels, labels, TRAIN, layouts=layouts),
                          Stage(steps=3, batch=4, lr=1e-3, seed=0, cond_dropout=0.1))
    assert all(torch.equal(v, before_generator[k]) for k, v in generator.state_dict().items())
    assert any(not torch.equal(v, before_controlnet[k]) for k, v in controlnet.state_dict().items())


def test_embedding_prompt_copies_the_base_and_trains_cross_attention_and_adapter_only(images):
    pixels, _ = images
    ddpm, ddim = make_schedulers(CONFIG)
    base = new_generator().requires_grad_(False)
    before = state(base)
    embeddings = torch.randn(24, 6)
    gen, adapter = fit_embedding_prompt(base, ddpm, ImageSet(pixels, images[1], TRAIN, embeddings=embeddings),
                                        Stage(steps=3, batch=4, lr=1e-2, seed=0, cond_dropout=0.1))
    assert all(torch.equal(v, before[k]) for k, v in base.state_dict().items())  # the base is untouched
    changed = {k for k, v in gen.unet.state_dict().items() if not torch.equal(v, before["unet." + k])}
    assert changed and all(is_cross_attention_parameter(k) for k in changed)
    assert torch.equal(gen.prompts, base.prompts)
    drawn = embedding_prompted(gen, adapter, ddim, embeddings[:3], 2.0, seed=1, ddim_steps=2)
    assert drawn.shape == (3, 1, 8, 8) and torch.equal(drawn, embedding_prompted(gen, adapter, ddim, embeddings[:3],
                                                                                    2.0, seed=1, ddim_steps=2))


def test_class_prompted_sampling_routes_layouts_through_the_controlnet():
    _, ddim = make_schedulers(CONFIG)
    generator = new_generator().eval()
    controlnet = make_controlnet(generator.unet).eval()
    classes, layouts = torch.tensor([0, 1, 0]), torch.randn(3, 4, 4)
    plain = class_prompted(generator, ddim, classes, 2.0, 5, 2)
    assert plain.shape == (3, 1, 8, 8) and torch.equal(plain, class_prompted(generator, ddim, classes, 2.0, 5, 2))
    # a fresh ControlNet adds nothing (zero convolutions); once they are not zero, the layout shows
    assert torch.allclose(class_prompted(generator, ddim, classes, 2.0, 5, 2, controlnet, layouts), plain)
    with torch.no_grad():
        for name, p in controlnet.named_parameters():
            if "zero_conv" in name or "controlnet_down_blocks" in name or "controlnet_mid_block" in name:
                p.normal_(0, 0.1)
    steered = class_prompted(generator, ddim, classes, 2.0, 5, 2, controlnet, layouts)
    assert (steered - plain).abs().max() > 1e-3
    assert torch.equal(class_prompted(generator, ddim, classes, 2.0, 5, 2, controlnet), plain)  # no layouts: no control


def test_one_trial_per_image_takes_the_first_repetition_with_subjects_in_turn(tmp_path):
    pixels, labels = load_digits_images(8)
    shown = np.arange(0, 1797, 60)
    recording = simulate_visual_eeg(pixels, labels, VisualEEGConfig(repetitions=2), [0, 1, 2], shown)
    split = np.full(len(labels), "train", dtype=object)
    split[shown[::3]] = "test"
    save_paired_dataset(tmp_path / "paired", pixels, labels, ImageSplit(split.astype(str)), recording, {})
    data = load_paired_dataset(tmp_path / "paired")
    chosen, trials = data.one_trial_per_image("test")
    assert (chosen == np.sort(shown[::3])).all()
    assert (data.table["image"][trials] == chosen).all()
    assert (data.table["subject"][trials] == np.arange(len(chosen)) % 3).all()
    for i, n in zip(chosen, trials):  # the earliest session of that subject for that image
        same = (data.table["image"] == i) & (data.table["subject"] == data.table["subject"][n])
        assert same.sum() == 2 and data.table["session"][n] == data.table["session"][same].min()
    some, some_trials = data.one_trial_per_image("test", limit=4)
    assert len(some) == 4 and set(some) <= set(chosen) and (np.diff(some) > 0).all()
    again, _ = data.one_trial_per_image("test", limit=4)
    assert (again == some).all() and (data.one_trial_per_image("test", limit=4, seed=8)[0] != some).any()


def test_rgb_images_flow_through_the_image_models(tmp_path):
    from eegdm_utils.e2i.image_models import ImageEmbedder, augment
    from eegdm_utils.e2i.metrics import ssim
    from eegdm_utils.e2i.plots import plot_reconstruction_grid, plot_stage_b
    from eegdm_utils.e2i.structure import BlockMeans, StructureAutoencoder, StructureConfig

    rgb = GeneratorConfig(image_size=8, image_channels=3, block_out_channels=(16, 32), context_dim=32,
                          attention_head_dim=8, prompt_tokens=2, train_timesteps=100)
    torch.manual_seed(0)
    generator = ClassTokenGenerator(rgb).eval()
    _, ddim = make_schedulers(rgb)
    drawn = class_prompted(generator, ddim, torch.tensor([0, 1]), 2.0, 5, 2)
    assert drawn.shape == (2, 3, 8, 8)
    config = ImageNetConfig(channels=4, features=8, n_classes=3, image_channels=3)
    assert Judge(config)(drawn).shape == (2, 3) and ImageEmbedder(config)(drawn).shape == (2, 8)
    assert StructureAutoencoder(StructureConfig(image_channels=3, channels=4)).encode(drawn).shape == (2, 4, 4)
    # a colour image whose channels agree: block means and SSIM as of its grey version
    grey = torch.rand(2, 1, 8, 8) * 2 - 1
    colour = grey.expand(2, 3, 8, 8)
    assert torch.allclose(BlockMeans(4, 8).encode(colour), BlockMeans(4, 8).encode(grey))
    other = torch.rand(2, 1, 8, 8) * 2 - 1
    assert np.isclose(ssim(other.expand(2, 3, 8, 8).numpy(), colour.numpy()), ssim(other[:, 0].numpy(), grey[:, 0].numpy()))
    # augmentation shifts every channel alike (noise off)
    views = augment(colour.contiguous(), torch.Generator().manual_seed(0), noise=0.0, erase=False)
    assert views.shape == (2, 3, 8, 8) and torch.equal(views[:, 0], views[:, 2])
    # figures take colour images
    import matplotlib.pyplot as plt

    images = drawn.detach().numpy()
    plt.close(plot_reconstruction_grid(images, {"m": images[:, None]}, 1))
    plt.close(plot_stage_b({"step": [1, 2], "loss": [1.0, 0.5]}, images[:, None], 0.5, 3.0, ["a", "b"]))


def test_paired_dataset_gives_channels_first_images_and_rejects_bad_shapes(tmp_path):
    pixels, labels = load_digits_images(8)
    shown = np.arange(0, 1797, 300)
    recording = simulate_visual_eeg(pixels, labels, VisualEEGConfig(repetitions=1), [0], shown)
    split = ImageSplit(np.full(len(labels), "train"))
    colour = np.stack([pixels, -pixels, pixels], axis=-1)  # [I, H, W, 3]
    save_paired_dataset(tmp_path / "rgb", colour, labels, split, recording, {})
    data = load_paired_dataset(tmp_path / "rgb")
    chw = data.images_chw()
    assert data.image_channels == 3 and chw.shape == (1797, 3, 8, 8) and data.n_classes == 10
    assert np.array_equal(chw[5, 1], -pixels[5]) and np.array_equal(chw[5, 2], pixels[5])
    save_paired_dataset(tmp_path / "grey", pixels, labels, split, recording, {})
    assert load_paired_dataset(tmp_path / "grey").images_chw().shape == (1797, 1, 8, 8)
    save_paired_dataset(tmp_path / "bad", pixels[:, :, :6], labels, split, recording, {})
    with pytest.raises(ValueError, match="images.npy.*neither"):
        load_paired_dataset(tmp_path / "bad")
