"""Stimuli, splits by image, the simulated visual EEG and its block-design pitfall, the paired dataset."""

from dataclasses import asdict, replace

import numpy as np
import pytest

from eegdm_utils.e2i.paired_data import load_paired_dataset, save_paired_dataset
from eegdm_utils.e2i.stimuli import load_digits_images, split_by_image
from eegdm_utils.e2i.visual_eeg import (VisualEEGConfig, block_design_check, decoder_features, fit_linear_decoder,
                                        linear_decoder, repetition_average, simulate_visual_eeg)

# Small problems: one BLAS/torch thread is faster, and fair to the other tests.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    return load_digits_images(8)


def test_digits_and_upsampling(digits):
    images, labels = digits
    assert images.shape == (1797, 8, 8) and images.min() == -1.0 and images.max() == 1.0
    assert np.bincount(labels).min() > 170
    big, _ = load_digits_images(16)
    assert big.shape == (1797, 16, 16) and -1.0 <= big.min() and big.max() <= 1.0
    with pytest.raises(ValueError, match="multiple of 8"):
        load_digits_images(12)


def test_split_is_by_image_stratified_and_seeded(digits):
    _, labels = digits
    split = split_by_image(labels, 0.15, 0.15, seed=0)
    parts = [set(split.indices(s)) for s in ("train", "val", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(map(len, parts)) == len(labels)
    test_labels = labels[split.indices("test")]
    assert np.bincount(test_labels, minlength=10).min() >= 25  # every class in test
    assert (split_by_image(labels, 0.15, 0.15, seed=0).split == split.split).all()
    assert (split_by_image(labels, 0.15, 0.15, seed=1).split != split.split).any()
    with pytest.raises(KeyError, match="unknown split"):
        split.indices("eval")


def test_simulation_is_deterministic_and_per_session(digits):
    images, labels = digits
    config = VisualEEGConfig(repetitions=1)
    shown = np.arange(0, 1797, 40)
    one = simulate_visual_eeg(images, labels, config, [0], shown)
    again = simulate_visual_eeg(images, labels, config, [0], shown)
    two = simulate_visual_eeg(images, labels, config, [0, 1], shown)
    assert one.eeg.shape == (len(shown), 32, 128) and one.eeg.dtype == np.float32
    assert np.array_equal(one.eeg, again.eeg)
    assert np.array_equal(one.eeg, two.eeg[two.subject == 0])  # adding a subject leaves the others alone
    assert sorted(one.image) == sorted(shown) and (one.label == labels[one.image]).all()
    assert 5 < one.eeg.std() < 30  # microvolt-sized


def test_the_eeg_is_computed_from_the_pixels_not_the_label(digits):
    images, labels = digits
    shown = np.arange(0, 1797, 25)
    config = VisualEEGConfig(repetitions=1)
    data = simulate_visual_eeg(images, labels, config, [0], shown)
    relabelled = simulate_visual_eeg(images, np.random.default_rng(0).permutation(labels), config, [0], shown)
    assert np.array_equal(data.eeg, relabelled.eeg)  # randomised design: the labels reach only the table
    flipped = simulate_visual_eeg(images[:, :, ::-1], labels, config, [0], shown)
    assert not np.allclose(data.eeg, flipped.eeg)  # mirrored pixels evoke other EEG


def test_single_trial_decoding_is_hard_and_repetition_averaging_helps(digits):
    """The calibration: a linear decoder gets about 22% of single trials right (10 classes): well
    above chance, below 0.3; the same decoder on 4-repetition averages does better."""
    images, labels = digits
    split = split_by_image(labels, 0.15, 0.15, seed=0)
    data = simulate_visual_eeg(images, labels, VisualEEGConfig(repetitions=4), [0], np.arange(len(images)))
    train = np.flatnonzero(np.isin(data.image, split.indices("train")))
    val = np.flatnonzero(np.isin(data.image, split.indices("val")))
    decoder = linear_decoder(data.eeg[train], data.label[train])
    single = float((decoder.predict(decoder_features(data.eeg[val])) == data.label[val]).mean())
    averaged_eeg, averaged_image, averaged_label = repetition_average(data, val)
    assert len(averaged_eeg) == len(val) // 4 and set(averaged_image) == set(data.image[val])
    averaged = float((decoder.predict(decoder_features(averaged_eeg)) == averaged_label).mean())
    assert 0.15 < single < 0.3
    assert averaged > single + 0.05


def test_block_design_pitfall(digits):
    """Class blocks with a shared slow state and no stimulus signal at all: a random-trial split
    decodes the class far above chance, leave-block-out does not; a randomised design decodes nothing."""
    images, labels = digits
    shown = np.random.default_rng(0).choice(len(images), 200, replace=False)
    blocked = VisualEEGConfig(repetitions=3, stimulus_gain=0.0, block_design=True)
    result = block_design_check(simulate_visual_eeg(images, labels, blocked, [0], shown))
    assert result["random_trial"] > 0.6
    assert result["leave_block_out"] < 0.3
    randomised = VisualEEGConfig(**{**asdict(blocked), "block_design": False})
    control = block_design_check(simulate_visual_eeg(images, labels, randomised, [0], shown))
    assert control["random_trial"] < 0.3


def test_leave_block_out_recovers_a_real_stimulus_signal(digits):
    """The positive control of the check above: on a randomised recording with the stimulus on,
    leave-block-out decodes far above chance, so its chance-level score on a block design
    without a stimulus means there is nothing to decode, not that the split cannot."""
    images, labels = digits
    shown = np.random.default_rng(1).choice(len(images), 900, replace=False)
    randomised = VisualEEGConfig(repetitions=3)
    result = block_design_check(simulate_visual_eeg(images, labels, randomised, [0], shown))
    assert result["leave_block_out"] > 0.16  # chance 0.1
    silent = block_design_check(simulate_visual_eeg(images, labels, replace(randomised, stimulus_gain=0.0), [0], shown))
    assert silent["leave_block_out"] < 0.15


def test_block_design_schedules_classes_in_blocks(digits):
    images, labels = digits
    data = simulate_visual_eeg(images, labels, VisualEEGConfig(repetitions=1, block_design=True), [0],
                               np.arange(0, 1797, 9))
    order = np.argsort(data.position)
    changes = np.count_nonzero(np.diff(data.label[order]))
    assert changes == 9  # ten blocks, one per class
    assert all(len(np.unique(data.label[data.state == s])) == 1 for s in np.unique(data.state))


def test_paired_dataset_roundtrip_and_errors(digits, tmp_path):
    images, labels = digits
    split = split_by_image(labels, 0.15, 0.15, seed=0)
    data = simulate_visual_eeg(images, labels, VisualEEGConfig(repetitions=1), [0], np.arange(0, 1797, 30))
    save_paired_dataset(tmp_path / "paired", images, labels, split, data, {"note": "test"})
    loaded = load_paired_dataset(tmp_path / "paired")
    assert np.allclose(loaded.eeg, data.eeg, atol=0.05)  # stored as float16
    assert (loaded.split.split == split.split).all() and loaded.meta["note"] == "test"
    assert set(loaded.table["image"][loaded.trials("test")]) <= set(split.indices("test"))
    with pytest.raises(FileNotFoundError, match="80_eeg_encoder_pretrain"):
        load_paired_dataset(tmp_path / "nothing")
    (tmp_path / "paired" / "eeg.npy").unlink()
    with pytest.raises(FileNotFoundError, match="eeg.npy"):
        load_paired_dataset(tmp_path / "paired")


def test_fit_linear_decoder_picks_the_penalty_on_validation(digits):
    images, labels = digits
    split = split_by_image(labels, 0.15, 0.15, seed=0)
    data = simulate_visual_eeg(images, labels, VisualEEGConfig(repetitions=1), [0], np.arange(len(images)))
    train = np.flatnonzero(np.isin(data.image, split.indices("train")))
    val = np.flatnonzero(np.isin(data.image, split.indices("val")))
    model, C, scores = fit_linear_decoder(data.eeg[train], data.label[train], data.eeg[val], data.label[val],
                                          penalties=(1e-4, 1e-2))
    assert set(scores) == {1e-4, 1e-2} and scores[C] == max(scores.values())
    assert scores[C] == float((model.predict(decoder_features(data.eeg[val])) == data.label[val]).mean())
