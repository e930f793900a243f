"""Shared fixtures: a tiny simulated corpus and its store, the real recordings, and the SSMDP
block written out with plain operators (the oracle of the fused block and of the cache)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import pytest
import torch

from eegdm_utils.data.preprocess import PreprocessConfig
from eegdm_utils.data.recordings import collect_tuev
from eegdm_utils.data.simulate import CLASS_NAMES, SimulationConfig, write_corpus
from eegdm_utils.data.store import build_store

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO / "data" / "real"  # shipped with the project (data/real/README.md)

TINY = SimulationConfig(n_train_subjects=5, n_eval_subjects=3, record_seconds=30, seed=7)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root, TINY)
    return root


@pytest.fixture(scope="session")
def tiny_store(tiny_corpus, tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "store"
    return build_store(path, collect_tuev(tiny_corpus), list(CLASS_NAMES), PreprocessConfig(notch_freq=60.0),
                       {"kind": "test"})


@pytest.fixture(scope="module")
def one_thread():
    """One torch and BLAS thread for a module of small problems (``pytest.mark.usefixtures``)."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


def real_data(*parts: str) -> Path:
    """A path under the shipped real recordings (data/real/)."""
    path = REAL_DATA.joinpath(*parts)
    assert path.exists(), f"{path}: the real recordings shipped in data/real/ are missing from this checkout"
    return path


def _unfused_block(block, x: torch.Tensor, cond: torch.Tensor):
    """An SSMDP block as the paper writes it, from plain operators (S4D.forward, torch.sigmoid,
    torch.tanh, the output projection split into skip and residual): (next x or None, skip, gate, filter)."""
    H = x.shape[-1]
    y = block.s4d(block.in_linear(block.norm(x) + block.cond_linear(cond)))  # [B, L, 2H]
    gate, filt = torch.sigmoid(y[..., :H]), torch.tanh(y[..., H:])
    out = block.out_linear(gate * filt)
    if block.is_last:
        return None, out, gate, filt
    skip, res = out.chunk(2, dim=-1)
    return res + x, skip, gate, filt


@pytest.fixture
def unfused_block():
    return _unfused_block


@pytest.fixture
def perturbed_ssmdp():
    """A factory of SSMDPs whose zero-initialised layers (conditioning, output) are not zero,
    since zeros would hide the conditioning from a test."""
    from eegdm_utils.models.ssmdp import SSMDP

    def make(config, seed: int = 0, scale: float = 0.01):
        torch.manual_seed(seed)
        model = SSMDP(config)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(scale * torch.randn_like(p))
        return model

    return make


def write_things_release(root: Path, train_concepts, test_concepts, per_concept: int = 2, train_reps: int = 4,
                         test_reps: int = 5, subjects=(1, 2), volts: bool = True, channel_names=None) -> dict:
    """A tiny release in THINGS-EEG2's preprocessed layout (eegdm_utils.e2i.things_eeg2): JPEG
    stimuli with a bright block whose size names the image (concept k, image j: (k + 1) x (j + 1)
    tenths of the side), random EEG [images, repetitions, 17, 100] at 100 Hz, in volts or not.
    Returns {(subject, "training" | "test"): the EEG array written}."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    meta = {"train_img_concepts": [], "train_img_files": [], "test_img_concepts": [], "test_img_files": []}
    for part, folder, names, per in (("train", "training_images", train_concepts, per_concept),
                                     ("test", "test_images", test_concepts, 1)):
        for k, concept in enumerate(names):
            (root / folder / concept).mkdir(parents=True)
            for j in range(per):
                name = f"{concept[6:]}_{j:02d}.jpg"
                pixels = np.zeros((40, 40, 3), np.uint8)
                pixels[: 10 * (k + 1), : 10 * (j + 1)] = 255
                Image.fromarray(pixels).save(root / folder / concept / name, quality=95)
                meta[f"{part}_img_concepts"].append(concept)
                meta[f"{part}_img_files"].append(name)
    np.save(root / "image_metadata.npy", meta)
    times = -0.2 + np.arange(100) / 100.0
    channel_names = list(channel_names or [f"E{c}" for c in range(17)])
    eeg = {}
    for s in subjects:
        (root / f"sub-{s:02d}").mkdir()
        for part, n, reps in (("training", len(train_concepts) * per_concept, train_reps),
                              ("test", len(test_concepts), test_reps)):
            data = rng.normal(size=(n, reps, len(channel_names), 100)) * (1e-5 if volts else 10.0)
            eeg[(s, part)] = data
            np.save(root / f"sub-{s:02d}" / f"preprocessed_eeg_{part}.npy",
                    {"preprocessed_eeg_data": data, "ch_names": channel_names, "times": times})
    return eeg


@lru_cache(maxsize=1)
def _mutation_test_files() -> dict[str, set[str]]:
    """tools/mutation.py's map: dotted module prefix -> the test files that cover that module."""
    import runpy

    modules = runpy.run_path(str(REPO / "tools" / "mutation.py"))["MODULES"]
    return {path[:-3].replace("/", ".") + ".": set(files) for path, files in modules.values()}


def pytest_collection_modifyitems(config, items):
    """Under `make mutation` (mutmut names the mutant in MUTANT_UNDER_TEST), a mutant of a core module
    runs only the tests of that module's test files among those mutmut chose (the ones that call its function)."""
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if "__mutmut_" not in mutant:
        return
    files = next((f for prefix, f in _mutation_test_files().items() if mutant.startswith(prefix)), None)
    if files is None:
        return
    keep = [item for item in items if item.nodeid.split("::")[0] in files]
    if len(keep) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep
