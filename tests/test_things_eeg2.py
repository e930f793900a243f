"""The THINGS-EEG2 reader on a tiny release written here in the release's layout."""

import numpy as np
import pytest
from conftest import write_things_release

from eegdm_utils.e2i.paired_data import load_paired_dataset
from eegdm_utils.e2i.things_eeg2 import write_things_eeg2

TRAIN_CONCEPTS = ["00001_aardvark", "00002_abacus", "00003_accordion", "00004_acorn"]
TEST_CONCEPTS = ["00005_aircraft", "00006_airplane"]
PER_CONCEPT, TRAIN_REPS, TEST_REPS, CHANNELS, SAMPLES = 2, 4, 5, 17, 100


def _release(root, subjects=(1, 2), volts=True):
    """4 training concepts x 2 images x 4 repetitions and 2 test images x 5 repetitions."""
    return write_things_release(root, TRAIN_CONCEPTS, TEST_CONCEPTS, PER_CONCEPT, TRAIN_REPS, TEST_REPS, subjects,
                                volts, [f"E{c}" for c in range(CHANNELS)])


def test_release_becomes_a_paired_dataset_with_unseen_test_concepts(tmp_path):
    source = _release(tmp_path / "things")
    out = write_things_eeg2(tmp_path / "things", tmp_path / "paired", [1, 2], image_size=16, val_fraction=0.25, seed=0)
    data = load_paired_dataset(out)
    n_train_images, n_test_images = len(TRAIN_CONCEPTS) * PER_CONCEPT, len(TEST_CONCEPTS)
    assert data.images.shape == (n_train_images + n_test_images, 16, 16)
    assert data.images.min() >= -1 and data.images.max() <= 1
    assert data.split.counts() == {"train": 6, "val": 2, "test": 2}  # one whole training concept held out
    train_classes = set(data.labels[data.split.indices("train")])
    assert not train_classes & set(data.labels[data.split.indices("test")])  # zero-shot: test classes unseen
    assert not train_classes & set(data.labels[data.split.indices("val")])  # validation: whole concepts too
    assert data.meta["class_names"] == TRAIN_CONCEPTS + TEST_CONCEPTS and data.meta["sfreq"] == 100.0
    assert data.eeg.shape == (2 * (n_train_images * TRAIN_REPS + n_test_images * TEST_REPS), CHANNELS, SAMPLES)
    # trial -> image: the EEG of subject 2, test image 1, repetition 3 (volts written as microvolts)
    trial = np.flatnonzero((data.table["subject"] == 2) & (data.table["image"] == n_train_images + 1)
                           & (data.table["session"] == 2 * 1000 + 3))
    assert len(trial) == 1
    np.testing.assert_allclose(data.eeg[trial[0]], source[(2, "test")][1, 3] * 1e6, rtol=2e-3, atol=2e-3)
    assert data.meta["microvolts_per_unit"] == 1e6
    # image k of concept c has a bright block of (c + 1) x (k + 1) tenths: the right picture for the right row
    brightness = (data.images + 1).mean(axis=(1, 2)) / 2
    assert brightness[1] > brightness[0] and brightness[2] > brightness[0]


def test_subset_sizes_grey_and_rgb(tmp_path):
    _release(tmp_path / "things", subjects=(1,), volts=False)
    out = write_things_eeg2(tmp_path / "things", tmp_path / "rgb", [1], image_size=8, channels=3, train_concepts=2,
                            test_repetitions=2, val_fraction=0.0)
    data = load_paired_dataset(out)
    assert data.images.shape == (2 * PER_CONCEPT + 2, 8, 8, 3)
    assert data.split.counts() == {"train": 4, "val": 0, "test": 2}
    assert len(data.eeg) == 4 * TRAIN_REPS + 2 * 2 and data.meta["microvolts_per_unit"] == 1.0


def test_bad_release_raises_naming_the_file_and_keeps_the_existing_dataset(tmp_path):
    _release(tmp_path / "things", subjects=(1,))
    out = write_things_eeg2(tmp_path / "things", tmp_path / "paired", [1], image_size=8, val_fraction=0.0)
    before = (out / "eeg.npy").read_bytes()
    bad = tmp_path / "things" / "sub-01" / "preprocessed_eeg_test.npy"
    bad.write_bytes(b"not a numpy file")
    with pytest.raises(ValueError, match="preprocessed_eeg_test.npy: not a readable"):
        write_things_eeg2(tmp_path / "things", out, [1], image_size=8, val_fraction=0.0)
    assert (out / "eeg.npy").read_bytes() == before and load_paired_dataset(out).eeg.shape[0] > 0
    with pytest.raises(FileNotFoundError, match="sub-03"):
        write_things_eeg2(tmp_path / "things", out, [3], image_size=8, val_fraction=0.0)
    np.save(tmp_path / "things" / "sub-01" / "preprocessed_eeg_test.npy",
            {"preprocessed_eeg_data": np.zeros((2, 5, 16, SAMPLES)), "ch_names": [f"E{c}" for c in range(CHANNELS)],
             "times": np.arange(SAMPLES) / 100.0})
    with pytest.raises(ValueError, match="does not match 17 ch_names"):
        write_things_eeg2(tmp_path / "things", out, [1], image_size=8, val_fraction=0.0)
    assert (out / "eeg.npy").read_bytes() == before
