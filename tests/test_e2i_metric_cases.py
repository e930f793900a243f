"""Hand-made cases of the EEG-to-image metrics that `make mutation` showed untested: chance
levels, SSIM's window and colour handling against scikit-image called directly, the R^2 of
layouts written out, ties, edge sizes and the keys of the metric table."""

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from eegdm_utils.e2i.metrics import (chance_levels, derangement, frechet_distance, layout_scores, pixel_correlation,
                                     reconstruction_metrics, retrieval_top_k, ssim, standard_error,
                                     two_way_identification)


def test_chance_levels_are_one_over_n_and_one_half():
    assert chance_levels((2, 5, 10)) == {
        "top1_2way": 0.5, "top1_5way": 0.2, "top1_10way": 0.1,
        "top1_2way_judged": 0.5, "top1_5way_judged": 0.2, "top1_10way_judged": 0.1,
        "two_way_features": 0.5, "two_way_within_class": 0.5, "two_way_embedding": 0.5}


def test_derangement_is_seeded_and_defined_from_two_items():
    assert derangement(2, 0).tolist() == [1, 0]
    assert derangement(10, 3).tolist() == derangement(10, 3).tolist()
    with pytest.raises(ValueError):
        derangement(1, 0)


@pytest.mark.parametrize("shape, window", [((3, 6, 6), 5), ((3, 9, 9), 7), ((2, 7, 7), 7), ((2, 4, 4), 3), ((3, 6, 9), 5),
                                           ((2, 1, 6, 6), 5), ((2, 3, 8, 8), 7), ((2, 2, 6, 6), 5)])
def test_ssim_is_scikit_images_on_zero_one_intensities(shape, window):
    rng = np.random.default_rng(0)
    stimuli = rng.uniform(-1, 1, shape)
    recon = np.clip(stimuli + 0.4 * rng.standard_normal(shape), -1, 1)
    grey = len(shape) == 3 or shape[1] == 1
    expected = []
    for r, s in zip(recon, stimuli):
        r, s = (r + 1) / 2, (s + 1) / 2
        if grey:
            expected.append(structural_similarity(s.reshape(s.shape[-2:]), r.reshape(r.shape[-2:]), data_range=1.0,
                                                  win_size=window))
        else:
            expected.append(structural_similarity(s, r, data_range=1.0, win_size=window, channel_axis=0))
    np.testing.assert_allclose(ssim(recon, stimuli, per_image=True), expected, rtol=1e-12)
    assert ssim(recon, stimuli) == pytest.approx(np.mean(expected))
    assert ssim(stimuli, stimuli) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ssim(recon[:, None, None], stimuli[:, None, None])


def test_layout_scores_written_out():
    true = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 2.0], [1.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]]])
    predicted = true + np.array([[[0.1, 0.0], [0.0, -0.1]], [[0.0, 0.3], [0.0, 0.0]], [[0.0, 0.0], [0.2, 0.0]]])
    mean_layout = np.array([[0.5, 0.5], [0.5, 0.5]]) + np.array([[0.1, 0.0], [0.0, 0.0]])
    residual = ((true - predicted) ** 2).sum()
    r2 = 1 - residual / ((true - true.mean(axis=0)) ** 2).sum()
    r2_mean = 1 - residual / ((true - mean_layout) ** 2).sum()
    corr = np.mean([np.corrcoef(p.ravel(), t.ravel())[0, 1] for p, t in zip(predicted, true)])
    corr_mean = np.mean([np.corrcoef(mean_layout.ravel(), t.ravel())[0, 1] for t in true])
    out = layout_scores(predicted, true, mean_layout)
    assert out == pytest.approx({"correlation": corr, "mean_layout_correlation": corr_mean, "r2": r2,
                                 "r2_vs_mean_layout": r2_mean})


def test_identification_uses_correlation_so_row_offsets_do_not_matter_and_ties_lose():
    rng = np.random.default_rng(1)
    stimulus = rng.standard_normal((4, 6))
    shifted = stimulus * np.array([[1.0], [3.0], [0.5], [2.0]]) + np.array([[100.0], [-50.0], [7.0], [0.0]])
    assert two_way_identification(shifted, stimulus) == 1.0  # corr(r_i, s_i) = 1 for every row
    assert pixel_correlation(shifted, stimulus) == pytest.approx(1.0)
    same = np.tile(stimulus[:1], (4, 1))
    assert two_way_identification(same, same) == 0.0  # every pair tied: a loss
    assert two_way_identification(stimulus[:2], stimulus[:2]) == 1.0  # two images are enough
    with pytest.raises(ValueError):
        two_way_identification(stimulus[:3], stimulus[:2])
    with pytest.raises(ValueError):
        two_way_identification(stimulus[:1], stimulus[:1])


def test_retrieval_ties_count_against_and_k_may_be_every_candidate():
    candidates = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    predicted = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert retrieval_top_k(predicted, candidates, np.array([0, 2]), 1, per_item=True).tolist() == [0.0, 1.0]
    assert retrieval_top_k(predicted, candidates, np.array([0, 2]), 3) == 1.0
    # cosine, not a dot product of vectors shrunk by their norms: a long candidate does not win on length
    far, near = np.array([[10.0, 10.0], [0.0, 0.1]]), np.array([[0.0, 1.0]])
    assert retrieval_top_k(near, far, np.array([1]), 1) == 1.0
    with pytest.raises(ValueError):
        retrieval_top_k(predicted, candidates, np.array([0, 2, 1]), 1)
    with pytest.raises(ValueError):
        retrieval_top_k(predicted, candidates, np.array([0, 2]), 4)


def test_frechet_distance_rejects_other_shapes_and_standard_error_needs_two():
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(5), np.zeros((5, 2)))
    with pytest.raises(ValueError):
        frechet_distance(np.zeros((5, 2)), np.zeros(5))
    assert np.isnan(standard_error(np.array([1.0, np.nan])))
    assert standard_error(np.array([1.0, 3.0, np.nan])) == pytest.approx(np.std([1.0, 3.0], ddof=1) / np.sqrt(2))


def test_metric_table_has_every_metric_with_its_sampling_error():
    rng = np.random.default_rng(2)
    B = 6
    labels = np.array([0, 0, 1, 1, 2, 2])
    stimuli = rng.uniform(-1, 1, (B, 8, 8))
    features = rng.standard_normal((B, 5))
    probabilities = rng.dirichlet(np.ones(3), B)
    out = reconstruction_metrics(probabilities, features, stimuli, probabilities, features, stimuli, labels,
                                 ways=(2, 3), embeddings=features, stimulus_embeddings=features)
    assert out["ssim"] == pytest.approx(1.0) and out["pixcorr"] == pytest.approx(1.0)
    assert out["two_way_features"] == 1.0 and out["two_way_embedding"] == 1.0 and out["two_way_within_class"] == 1.0
    assert abs(out["frechet_small_sample"]) < 1e-6
    for name in ("ssim", "pixcorr", "two_way_features", "two_way_embedding", "two_way_within_class",
                 "top1_2way", "top1_3way_judged"):
        assert name + "_se" in out
    assert out["ssim_se"] == pytest.approx(0.0, abs=1e-12)
    per = two_way_identification(features[::-1], features, per_image=True)
    noisy = reconstruction_metrics(probabilities, features[::-1], stimuli, probabilities, features, stimuli, labels,
                                   ways=(2,), embeddings=features[::-1], stimulus_embeddings=features)
    assert noisy["two_way_features_se"] == pytest.approx(np.std(per, ddof=1) / np.sqrt(B))
    assert noisy["two_way_within_class"] == pytest.approx(
        np.nanmean(two_way_identification(features[::-1], features, labels, per_image=True)))
    assert all(np.isfinite(v) for k, v in noisy.items() if k.endswith("_se"))
