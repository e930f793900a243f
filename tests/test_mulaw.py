import numpy as np
import pytest
import torch

from eegdm_utils.data.mulaw import inverse_staged_mu_law, staged_mu_law


def test_identity_inside_unit_interval():
    x = np.linspace(-1, 1, 2001)
    assert np.array_equal(staged_mu_law(x), x)


def test_compresses_outside_and_matches_formula():
    x = np.array([-40.0, -2.0, 1.5, 3.0, 100.0])
    expected = np.sign(x) * np.log(1 + 255 * np.abs(x)) / np.log(256)
    assert np.allclose(staged_mu_law(x), expected)
    assert np.all(np.abs(staged_mu_law(x)) < np.abs(x))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_exact_inverse_and_monotone(backend):
    x = np.concatenate([np.linspace(-500, 500, 20001), [-1.0, 1.0, 0.0]])
    if backend == "torch":
        x = torch.tensor(x, dtype=torch.float64)
    u = staged_mu_law(x)
    back = inverse_staged_mu_law(u)
    err = np.abs(np.asarray(back) - np.asarray(x))
    assert err.max() < 1e-9 * max(1.0, float(np.abs(np.asarray(x)).max()))
    order = np.argsort(np.asarray(x)[:20001])
    assert np.all(np.diff(np.asarray(u)[:20001][order]) > 0)


def test_continuous_at_one_and_input_untouched():
    x = np.array([1.0 - 1e-12, 1.0, 1.0 + 1e-12])
    copy = x.copy()
    u = staged_mu_law(x)
    assert np.allclose(u, 1.0, atol=1e-9)
    assert np.array_equal(x, copy)
