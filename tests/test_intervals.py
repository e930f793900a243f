"""The subject-level paired bootstrap against independent oracles: scikit-learn's metrics and a
slow bootstrap written out as the definition says (concatenate the lines of the drawn subjects)."""

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score

from eegdm_utils.eval.intervals import cohen_kappa, subject_bootstrap, subject_interval

K = 4


def corpus(seed=0, n_subjects=6, lines=30, seeds=3):
    rng = np.random.default_rng(seed)
    subjects = np.repeat([f"s{i}" for i in range(n_subjects)], lines)
    y = rng.integers(0, K, len(subjects))
    noisy = lambda p: np.where(rng.random((seeds, len(y))) < p, rng.integers(0, K, (seeds, len(y))), y)
    return y, noisy(0.4), noisy(0.7), subjects


def test_kappa_matches_scikit_learn_with_and_without_weights():
    rng = np.random.default_rng(1)
    for _ in range(20):
        y, p = rng.integers(0, K, 80), rng.integers(0, K, 80)
        p[:40] = y[:40]
        w = rng.integers(0, 4, 80)
        assert cohen_kappa(y, p, K) == pytest.approx(cohen_kappa_score(y, p))
        assert cohen_kappa(y, p, K, w) == pytest.approx(cohen_kappa_score(y, p, sample_weight=w))
    assert cohen_kappa(np.zeros(5, int), np.zeros(5, int), K) == 0.0  # one class everywhere: no agreement beyond chance


@pytest.mark.parametrize("metric, oracle", [("kappa", cohen_kappa_score), ("balanced_accuracy", balanced_accuracy_score)])
def test_the_difference_on_the_test_set_is_the_seed_mean_of_each_method_minus_the_other(metric, oracle):
    y, a, b, subjects = corpus()
    result = subject_bootstrap(y, a, b[:2], subjects, K, metric=metric, n_boot=10)
    expected = np.mean([oracle(y, p) for p in a]) - np.mean([oracle(y, p) for p in b[:2]])
    assert result["difference"] == pytest.approx(expected)


def slow_bootstrap(y, a, b, subjects, n_boot, seed, level):
    names, index = np.unique(subjects, return_inverse=True)
    draws = np.random.default_rng(seed).integers(0, len(names), size=(n_boot, len(names)))
    differences = []
    for draw in draws:
        lines = np.concatenate([np.flatnonzero(index == s) for s in draw])  # every line of each drawn subject
        differences.append(np.mean([cohen_kappa_score(y[lines], p[lines]) for p in a])
                           - np.mean([cohen_kappa_score(y[lines], p[lines]) for p in b]))
    tail = 100 * (1 - level) / 2
    return np.percentile(differences, [tail, 100 - tail])


def test_the_interval_equals_the_bootstrap_written_out_line_by_line():
    y, a, b, subjects = corpus(seed=3)
    result = subject_bootstrap(y, a, b, subjects, K, n_boot=200, seed=7, level=0.9)
    low, high = slow_bootstrap(y, a, b, subjects, 200, 7, 0.9)
    assert (result["low"], result["high"]) == (pytest.approx(low), pytest.approx(high))
    assert result["low"] < result["difference"] < result["high"]
    assert result["n_subjects"] == 6


def test_identical_methods_differ_by_exactly_zero_on_every_resample():
    y, a, _, subjects = corpus()
    result = subject_bootstrap(y, a, a.copy(), subjects, K, n_boot=100)
    assert result["difference"] == result["low"] == result["high"] == 0.0


def test_a_gain_on_one_subject_only_is_not_a_claim_and_a_gain_on_all_is():
    y, a, _, subjects = corpus(seed=5, seeds=1)
    one = a.copy()
    on_s0 = subjects == "s0"
    one[0, on_s0] = y[on_s0]  # better than `a` on subject s0 only
    result = subject_bootstrap(y, one, a, subjects, K, n_boot=500)
    assert result["difference"] > 0 and result["low"] <= 0.0  # resamples without s0 show no gain
    everywhere = np.where(np.random.default_rng(0).random(a.shape) < 0.5, y, a)  # right on half the lines of everyone
    result = subject_bootstrap(y, everywhere, a, subjects, K, n_boot=500)
    assert result["low"] > 0.0


def test_the_resamples_follow_the_seed():
    y, a, b, subjects = corpus()
    first, again = (subject_bootstrap(y, a, b, subjects, K, n_boot=50, seed=1) for _ in range(2))
    other = subject_bootstrap(y, a, b, subjects, K, n_boot=50, seed=2)
    assert first == again and (first["low"], first["high"]) != (other["low"], other["high"])


def test_mismatched_shapes_and_unknown_metrics_are_named():
    y, a, b, subjects = corpus()
    with pytest.raises(ValueError, match="pred_b has 179 lines"):
        subject_bootstrap(y, a, b[:, 1:], subjects, K)
    with pytest.raises(ValueError, match="subjects has 179"):
        subject_bootstrap(y, a, b, subjects[1:], K)
    with pytest.raises(ValueError, match="metric 'f1'"):
        subject_bootstrap(y, a, b, subjects, K, metric="f1")


def test_one_methods_interval_equals_its_bootstrap_written_out_line_by_line():
    y, a, _, subjects = corpus(seed=4)
    result = subject_interval(y, a, subjects, K, n_boot=200, seed=7, level=0.9)
    names, index = np.unique(subjects, return_inverse=True)
    scores = []
    for draw in np.random.default_rng(7).integers(0, len(names), size=(200, len(names))):
        lines = np.concatenate([np.flatnonzero(index == s) for s in draw])
        scores.append(np.mean([cohen_kappa_score(y[lines], p[lines]) for p in a]))
    assert result["value"] == pytest.approx(np.mean([cohen_kappa_score(y, p) for p in a]))
    assert (result["low"], result["high"]) == tuple(pytest.approx(v) for v in np.percentile(scores, [5, 95]))
    perfect = subject_interval(y, y, subjects, K, n_boot=50)
    assert perfect["value"] == perfect["low"] == perfect["high"] == 1.0
