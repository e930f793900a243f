"""The structure code (eegdm_utils.e2i.structure): block means against explicit means, Sobel
edges on a known step, the autoencoder learning pixels and edges, and the EEG conditioner
reading its structure module frozen."""

import numpy as np
import pytest
import torch

from eegdm_utils.e2i.eeg_conditioning import ConditioningConfig, EEGConditioner
from eegdm_utils.e2i.masked_eeg import MaskedEEGConfig, MaskedEEGModel
from eegdm_utils.e2i.stimuli import load_digits_images
from eegdm_utils.e2i.structure import (BlockMeans, StructureAutoencoder, StructureConfig, fit_structure_autoencoder,
                                       sobel_edges, structure_loss)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_block_means_are_the_means_of_each_block_and_upsample_back():
    images = torch.randn(3, 1, 8, 8)
    codes = BlockMeans(4, 8).encode(images)
    assert codes.shape == (3, 4, 4)
    for i, j in ((0, 0), (1, 3), (3, 2)):
        assert torch.allclose(codes[:, i, j], images[:, 0, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean(dim=(1, 2)))
    maps = BlockMeans(4, 8)(codes.clamp(-1, 1))
    expected = np.repeat(np.repeat(codes.clamp(-1, 1).numpy(), 2, axis=1), 2, axis=2)
    assert maps.shape == (3, 1, 8, 8) and np.allclose(maps[:, 0].numpy(), expected)
    with pytest.raises(ValueError, match="must divide"):
        BlockMeans(3, 8)


def test_sobel_edges_of_a_vertical_step():
    image = torch.zeros(1, 1, 8, 8)
    image[..., 4:] = 1.0
    edges = sobel_edges(image)[0, 0]
    # columns 3 and 4 straddle the step: the x-kernel sums to (1 + 2 + 1) / 8 there
    assert torch.allclose(edges[:, 3:5], torch.full((8, 2), 0.5), atol=1e-3)
    assert edges[:, :3].max() < 1e-3 and edges[:, 5:].max() < 1e-3
    assert torch.allclose(sobel_edges(image.transpose(-1, -2))[0, 0], edges.T, atol=1e-6)  # rotation-consistent


def test_autoencoder_learns_pixels_and_edges_of_held_out_digits():
    pixels, _ = load_digits_images(8)
    images = torch.from_numpy(pixels)[:, None]
    train_images, held_out = torch.arange(0, 1200), images[1200:]
    torch.manual_seed(0)
    model = StructureAutoencoder(StructureConfig(grid=4, image_size=8, channels=16))
    _, before = structure_loss(model, held_out)
    fit_structure_autoencoder(model, images, train_images, steps=150, batch=128, seed=0, lr=3e-3)
    with torch.no_grad():
        _, after = structure_loss(model, held_out)
        codes = model.encode(held_out)
    assert codes.shape == (len(held_out), 4, 4) and codes.abs().max() <= 1
    assert after["pixels"] < 0.5 * before["pixels"] and after["edges"] < 0.7 * before["edges"]
    # 16 learned numbers keep more of a digit than its 16 block means
    block = BlockMeans(4, 8)
    assert after["pixels"] < torch.nn.functional.mse_loss(block(block.encode(held_out)), held_out)


def test_the_conditioner_reads_its_structure_module_and_keeps_it_frozen():
    encoder = MaskedEEGModel(MaskedEEGConfig(n_channels=4, n_samples=32, patch=8, dim=16, depth=1, heads=2,
                                             decoder_dim=16, decoder_depth=1))
    config = ConditioningConfig(eeg_tokens=False, semantic=True, structural=True, encoder_dim=16, n_tokens=4,
                                context_dim=32, embed_dim=8, layout_grid=4, image_size=8)
    structure = StructureAutoencoder(StructureConfig(grid=4, image_size=8, channels=8))
    conditioner = EEGConditioner(encoder, config, structure)
    assert not any(p.requires_grad for p in conditioner.structure.parameters())
    readout = conditioner(torch.randn(2, 4, 32))
    assert torch.equal(conditioner.control(readout), structure(readout.layout))
    default = EEGConditioner(encoder, config)  # block means
    assert torch.equal(default.control(readout), BlockMeans(4, 8)(readout.layout))
