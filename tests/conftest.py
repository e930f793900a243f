"""Shared fixtures: a tiny simulated corpus and its store, and the real recordings."""

from __future__ import annotations

from pathlib import Path

import pytest

from eegdm_utils.preprocess import PreprocessConfig
from eegdm_utils.recordings import collect_tuev
from eegdm_utils.simulate import CLASS_NAMES, SimulationConfig, write_corpus
from eegdm_utils.store import build_store

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
