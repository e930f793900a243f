"""Metrics of EEG-to-image reconstruction on hand-made cases with known answers."""

import numpy as np
import pytest

from eegdm_utils.e2i.metrics import (chance_levels, derangement, frechet_distance, layout_scores, n_way_identification,
                                     pixel_correlation, reconstruction_metrics, retrieval_top_k, ssim, standard_error,
                                     two_way_identification)


def _probs_with_rank(rank: int, true: int = 0, k: int = 10) -> np.ndarray:
    """Probabilities over k classes where ``rank`` other classes score above the true one."""
    order = [c for c in range(k) if c != true]
    probs = np.zeros(k)
    scores = np.linspace(1.0, 0.1, k)
    ranking = order[:rank] + [true] + order[rank:]
    probs[ranking] = scores
    return probs / probs.sum()


@pytest.mark.parametrize("n", [2, 5, 10])
def test_n_way_top_and_bottom(n):
    top = np.stack([_probs_with_rank(0, true=c) for c in range(10)])
    bottom = np.stack([_probs_with_rank(9, true=c) for c in range(10)])
    assert n_way_identification(top, np.arange(10), n) == 1.0
    assert n_way_identification(bottom, np.arange(10), n) == 0.0


def test_n_way_second_place_matches_counting():
    # one class above the true one: the true class wins unless that class is among the n-1 distractors
    probs = _probs_with_rank(1)[None]
    for n in (2, 5, 10):
        assert n_way_identification(probs, np.array([0]), n) == pytest.approx((10 - n) / 9)


def test_n_way_matches_monte_carlo_and_treats_ties_as_losses():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), size=40)
    true = rng.integers(10, size=40)
    draws = []
    for i in range(40):
        for _ in range(400):
            others = rng.choice([c for c in range(10) if c != true[i]], size=4, replace=False)
            draws.append(probs[i, true[i]] > probs[i, others].max())
    assert n_way_identification(probs, true, 5) == pytest.approx(np.mean(draws), abs=0.02)
    uniform = np.full((3, 10), 0.1)
    assert n_way_identification(uniform, np.array([0, 1, 2]), 2) == 0.0


def test_n_way_rejects_bad_n_and_shapes():
    with pytest.raises(ValueError, match="2 <= n"):
        n_way_identification(np.full((2, 10), 0.1), np.array([0, 1]), 11)
    with pytest.raises(ValueError, match="true_class"):
        n_way_identification(np.full((2, 10), 0.1), np.array([0]), 2)


def test_two_way_identification_cases():
    rng = np.random.default_rng(1)
    stimuli = rng.normal(size=(30, 16))
    assert two_way_identification(stimuli, stimuli) == 1.0
    # one-hot features: swapping the first two reconstructions loses both their pairs with each other
    # and ties (a loss) with the third; the third wins both of its pairs: 2 of 6 pairs
    one_hot = np.eye(4)[:3]
    assert two_way_identification(one_hot[[1, 0, 2]], one_hot) == pytest.approx(2 / 6)
    # anti-correlated reconstructions lose almost every pair
    assert two_way_identification(-stimuli, stimuli) < 0.1
    # unrelated reconstructions are at chance
    noise = rng.normal(size=(400, 16))
    assert two_way_identification(noise, rng.normal(size=(400, 16))) == pytest.approx(0.5, abs=0.03)


def test_pixel_correlation_and_ssim_cases():
    rng = np.random.default_rng(2)
    images = rng.uniform(-1, 1, size=(5, 8, 8))
    assert pixel_correlation(images, images) == pytest.approx(1.0)
    assert pixel_correlation(-images, images) == pytest.approx(-1.0)
    assert pixel_correlation(2 * images + 0.3, images) == pytest.approx(1.0)  # invariant to gain and offset
    assert ssim(images, images) == pytest.approx(1.0)
    assert ssim(-images, images) < 0.0
    assert ssim(np.clip(images + 0.3 * rng.normal(size=images.shape), -1, 1), images) < 1.0
    with pytest.raises(ValueError, match="equal shape"):
        ssim(images[:, :4], images)


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(20000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # N(0, I) vs N(mu, 4 I): |mu|^2 + sum (1 + 4 - 2 * 2) = |mu|^2 + 3
    mu = np.array([1.0, -2.0, 0.5])
    b = 2.0 * rng.normal(size=(20000, 3)) + mu
    assert frechet_distance(a, b) == pytest.approx(float(mu @ mu) + 3.0, rel=0.03)
    with pytest.raises(ValueError, match="equal width"):
        frechet_distance(a, b[:, :2])


def test_derangement_has_no_fixed_point():
    for seed in range(20):
        p = derangement(7, seed)
        assert sorted(p) == list(range(7)) and not (p == np.arange(7)).any()


def test_reconstruction_metrics_perfect_vs_shuffled():
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(10), 4)
    probs = np.eye(10)[labels] * 0.9 + 0.01
    features = rng.normal(size=(40, 8))
    images = rng.uniform(-1, 1, size=(40, 8, 8))
    perfect = reconstruction_metrics(probs, features, images, probs, features, images, labels)
    assert perfect["top1_10way"] == perfect["top1_10way_judged"] == 1.0
    assert perfect["two_way_features"] == 1.0 and perfect["pixcorr"] == pytest.approx(1.0)
    p = derangement(40, 0)
    shuffled = reconstruction_metrics(probs[p], features[p], images[p], probs, features, images, labels)
    assert shuffled["top1_10way"] < 0.5 and shuffled["two_way_features"] < 0.7
    assert set(chance_levels()) - {"two_way_embedding"} <= set(perfect)  # no embedder features given


def test_within_class_identification_needs_the_image_not_its_class():
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(10), 6)
    prototypes = rng.normal(size=(10, 16))
    stimuli = prototypes[labels] + 0.5 * rng.normal(size=(60, 16))  # images: class prototype + their own detail
    class_only = prototypes[labels]  # a reconstruction that gets the class right and nothing else
    assert two_way_identification(class_only, stimuli) > 0.85  # across classes it looks good
    within = two_way_identification(class_only, stimuli, labels)
    assert within == pytest.approx(0.5, abs=0.12)  # within a class it is at chance
    assert two_way_identification(stimuli, stimuli, labels) == 1.0  # the image itself wins every pair
    per_image = two_way_identification(stimuli, stimuli, labels, per_image=True)
    assert per_image.shape == (60,) and (per_image == 1.0).all()
    alone = two_way_identification(stimuli[:3], stimuli[:3], np.array([0, 0, 1]), per_image=True)
    assert alone[:2].tolist() == [1.0, 1.0] and np.isnan(alone[2])  # class 1 has no pair
    with pytest.raises(ValueError, match="no two images share a group"):
        two_way_identification(stimuli[:3], stimuli[:3], np.array([0, 1, 2]))


def test_per_image_values_average_to_the_metric_and_give_the_sampling_error():
    rng = np.random.default_rng(6)
    probs = rng.dirichlet(np.ones(10), size=50)
    true = rng.integers(10, size=50)
    per = n_way_identification(probs, true, 5, per_image=True)
    assert per.shape == (50,) and per.mean() == pytest.approx(n_way_identification(probs, true, 5))
    images = rng.uniform(-1, 1, size=(50, 8, 8))
    noisy = np.clip(images + rng.normal(size=images.shape), -1, 1)
    assert pixel_correlation(noisy, images, per_image=True).mean() == pytest.approx(pixel_correlation(noisy, images))
    assert ssim(noisy, images, per_image=True).mean() == pytest.approx(ssim(noisy, images))
    values = rng.normal(size=400)
    assert standard_error(values) == pytest.approx(values.std(ddof=1) / 20)
    assert standard_error(np.array([1.0, np.nan, 3.0])) == pytest.approx(1.0)  # NaN ignored
    assert np.isnan(standard_error(np.array([1.0])))


def test_reconstruction_metrics_report_within_class_embedding_and_errors():
    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(10), 4)
    probs = np.eye(10)[labels] * 0.9 + 0.01
    features, embeddings = rng.normal(size=(40, 8)), rng.normal(size=(40, 6))
    images = rng.uniform(-1, 1, size=(40, 8, 8))
    out = reconstruction_metrics(probs, features, images, probs, features, images, labels,
                                 embeddings=embeddings, stimulus_embeddings=embeddings)
    assert out["two_way_within_class"] == out["two_way_embedding"] == 1.0
    assert out["two_way_within_class_se"] == 0.0 and out["pixcorr_se"] == pytest.approx(0.0, abs=1e-9)
    p = derangement(40, 1)
    shuffled = reconstruction_metrics(probs[p], features[p], images[p], probs, features, images, labels,
                                      embeddings=embeddings[p], stimulus_embeddings=embeddings)
    assert shuffled["two_way_embedding"] < 0.75 and shuffled["top1_10way_se"] > 0
    one = slice(None, None, 4)  # one image per class
    unique = reconstruction_metrics(probs[one], features[one], images[one], probs[one], features[one], images[one],
                                    labels[one])
    assert "two_way_within_class" not in unique and "two_way_embedding" not in unique  # no pairs, no embedder


def test_retrieval_top_k_cases():
    rng = np.random.default_rng(8)
    candidates = rng.normal(size=(50, 12))
    own = np.arange(50)
    assert retrieval_top_k(candidates * 3.0, candidates, own, 1) == 1.0  # cosine: scale does not matter
    assert retrieval_top_k(-candidates, candidates, own, 1) == 0.0
    noise = rng.normal(size=(2000, 12))
    truth = rng.integers(50, size=2000)
    for k in (1, 5):
        assert retrieval_top_k(noise, candidates, truth, k) == pytest.approx(k / 50, abs=0.015)  # chance k / M
    # a query between its own candidate and another: top-2 but not top-1
    axes = np.eye(12)[:5]
    query = (axes[0] + 1.2 * axes[1])[None]
    assert retrieval_top_k(query, axes, np.array([0]), 1) == 0.0
    assert retrieval_top_k(query, axes, np.array([0]), 2) == 1.0
    assert retrieval_top_k(candidates[:3], candidates, own[:3], 1, per_item=True).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="k must be"):
        retrieval_top_k(noise[:2], candidates, truth[:2], 51)


def test_layout_scores_against_the_mean_layout():
    rng = np.random.default_rng(9)
    mean = rng.normal(size=(4, 4))
    true = mean + 0.5 * rng.normal(size=(30, 4, 4))
    perfect = layout_scores(true, true, mean)
    assert perfect["correlation"] == pytest.approx(1.0) and perfect["r2"] == perfect["r2_vs_mean_layout"] == 1.0
    only_mean = layout_scores(np.broadcast_to(mean, true.shape), true, mean)
    assert only_mean["r2_vs_mean_layout"] == 0.0  # the mean layout is the reference
    assert only_mean["correlation"] == pytest.approx(only_mean["mean_layout_correlation"])
    assert only_mean["mean_layout_correlation"] > 0.5  # a shared structure already correlates
    worse = layout_scores(mean - (true - mean), true, mean)
    assert worse["r2_vs_mean_layout"] < 0
