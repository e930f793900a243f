"""Shared fixtures: a tiny simulated corpus and its store, the real recordings, and the SSMDP
block written out with plain operators (the oracle of the fused block and of the cache)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

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
    from eegdm_utils.ssmdp import SSMDP

    def make(config, seed: int = 0, scale: float = 0.01):
        torch.manual_seed(seed)
        model = SSMDP(config)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(scale * torch.randn_like(p))
        return model

    return make
