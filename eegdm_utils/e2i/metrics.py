"""Metrics of EEG-to-image reconstruction, as reported by DreamDiffusion, MindEye and SGDM.

- **n-way top-1 identification** (DreamDiffusion's "n-way top-1 classification
  accuracy"): the judge's class probabilities on a reconstruction; the true class and n-1
  other classes drawn at random; correct when the true class scores highest among the n.
  Computed exactly (the expectation over all draws), so it has no sampling noise. The
  "true" class is either the dataset label or the judge's prediction on the ground-truth
  image. Chance is 1/n.
- **2-way identification in feature space** (MindEye): for reconstruction i, is it more
  correlated (in the judge's features) with its own stimulus than with stimulus j? Averaged
  over all pairs i != j. Chance 0.5. Two variants need the image, not its class:
  **within-class** (only pairs of images of the same class, so a reconstruction that is
  right about the class alone scores chance) and the same test **in the image embedder's
  features** (a network trained without labels).
- **Retrieval top-k** (SGDM, THINGS-EEG zero-shot): the image embedding predicted from EEG
  ranks the held-out images' embeddings; correct when its own image is among the k nearest.
  Chance k / (number of candidates).
- **PixCorr**: Pearson correlation of reconstruction and stimulus pixels, averaged.
- **SSIM**: structural similarity (scikit-image) of the images as intensities in [0, 1], averaged.
- **Test-set sampling error**: every per-image metric also gives the standard error of its
  mean over the test images (``<metric>_se``), the spread a new draw of test images would
  show, to set beside the seed standard deviation.
- **Frechet distance** between the judge features of the reconstructions and of the
  stimuli (as FID, in a small judge's features and with a few hundred images: a
  small-sample estimate, biased upwards, only comparable at equal sample size).

Shape letters: B images, K classes, F feature width, H height, W width.
"""

from __future__ import annotations

from math import comb

import numpy as np


def n_way_identification(probabilities: np.ndarray, true_class: np.ndarray, n: int, per_image: bool = False):
    """Expected n-way top-1 accuracy: ``probabilities`` [B, K], ``true_class`` [B] (with
    ``per_image``, the expectation of each image [B] instead of their mean).

    With h classes scoring strictly higher than the true one, the true class wins the
    draw when none of the n-1 distractors (drawn from the K-1 others) is among those h:
    C(K-1-h, n-1) / C(K-1, n-1). Ties count as losses.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    true_class = np.asarray(true_class)
    B, K = probabilities.shape
    if not 2 <= n <= K:
        raise ValueError(f"n-way identification needs 2 <= n <= {K} classes, got n={n}")
    if true_class.shape != (B,):
        raise ValueError(f"true_class must have shape ({B},), got {true_class.shape}")
    own = probabilities[np.arange(B), true_class]  # [B]
    higher_or_tied = (probabilities >= own[:, None]).sum(axis=1) - 1  # [B] other classes not beaten
    wins = np.array([comb(K - 1 - h, n - 1) for h in higher_or_tied], dtype=np.float64) / comb(K - 1, n - 1)
    return wins if per_image else float(wins.mean())


def _row_standardise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    x = x - x.mean(axis=1, keepdims=True)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)


def two_way_identification(reconstruction_features: np.ndarray, stimulus_features: np.ndarray,
                           groups: np.ndarray | None = None, per_image: bool = False):
    """Share of pairs (i, j != i) with corr(r_i, s_i) > corr(r_i, s_j). Chance 0.5.

    ``groups`` [B] (e.g. the class of each image) keeps only the pairs within a group:
    within-class identification. ``per_image`` returns each image's share [B] (NaN for an
    image with no pair) instead of the mean over all pairs.
    """
    r, s = _row_standardise(reconstruction_features), _row_standardise(stimulus_features)
    if r.shape != s.shape or len(r) < 2:
        raise ValueError(f"need two or more paired feature rows of equal shape, got {r.shape} and {s.shape}")
    correlation = r @ s.T  # [B, B]
    own = np.diag(correlation)[:, None]
    pairs = ~np.eye(len(r), dtype=bool)  # [B, B]
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (len(r),):
            raise ValueError(f"groups must have shape ({len(r)},), got {groups.shape}")
        pairs &= groups[:, None] == groups[None, :]
        if not pairs.any():
            raise ValueError("no two images share a group: within-group identification has no pairs")
    wins = own > correlation + 1e-12  # ties (to rounding) count as losses
    if per_image:
        n_pairs = pairs.sum(axis=1)
        return np.where(n_pairs > 0, (wins & pairs).sum(axis=1) / np.maximum(n_pairs, 1), np.nan)
    return float(wins[pairs].mean())


def pixel_correlation(reconstructions: np.ndarray, stimuli: np.ndarray, per_image: bool = False):
    """Mean Pearson correlation between each reconstruction and its stimulus (pixels); with
    ``per_image``, each image's [B]."""
    r, s = _row_standardise(reconstructions), _row_standardise(stimuli)
    values = (r * s).sum(axis=1)
    return values if per_image else float(values.mean())


def ssim(reconstructions: np.ndarray, stimuli: np.ndarray, per_image: bool = False):
    """Mean structural similarity of [B, H, W] (grey) or [B, C, H, W] pairs of images in [-1, 1]
    (``per_image``: [B]); over colour channels SSIM is averaged.

    SSIM assumes non-negative intensities (with signed pixels its luminance term flips sign
    and an inverted image can score high), so the images are mapped to [0, 1] first.
    """
    from skimage.metrics import structural_similarity

    reconstructions = (np.asarray(reconstructions, np.float64) + 1.0) / 2.0
    stimuli = (np.asarray(stimuli, np.float64) + 1.0) / 2.0
    if reconstructions.ndim == 4 and reconstructions.shape[1] == 1 and stimuli.shape == reconstructions.shape:
        reconstructions, stimuli = reconstructions[:, 0], stimuli[:, 0]  # grey
    if reconstructions.shape != stimuli.shape or reconstructions.ndim not in (3, 4):
        raise ValueError(f"need [B, H, W] or [B, C, H, W] pairs of equal shape, got {reconstructions.shape} and "
                         f"{stimuli.shape}")
    side = min(stimuli.shape[-2:])
    window = min(7, side if side % 2 else side - 1)
    channel_axis = 0 if stimuli.ndim == 4 else None
    values = np.array([structural_similarity(s, r, data_range=1.0, win_size=window, channel_axis=channel_axis)
                       for r, s in zip(reconstructions, stimuli)])
    return values if per_image else float(values.mean())


def standard_error(per_image: np.ndarray) -> float:
    """Standard error of the mean of per-image values (NaN ignored): the test-set sampling error."""
    values = np.asarray(per_image, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return float("nan")
    return float(values.std(ddof=1) / np.sqrt(len(values)))


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of two feature sets [B, F]."""
    from scipy import linalg

    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need two [B, F] feature sets of equal width, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():  # near-singular product: regularise, as the FID reference does
        eps = 1e-6 * np.eye(len(cov_a))
        root = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    root = np.real(root)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2.0 * root))


def derangement(n: int, seed: int) -> np.ndarray:
    """A random permutation with no fixed point (every image gets another image's EEG)."""
    if n < 2:
        raise ValueError("a derangement needs at least two items")
    rng = np.random.default_rng([seed, 31])
    while True:
        permutation = rng.permutation(n)
        if not (permutation == np.arange(n)).any():
            return permutation


def reconstruction_metrics(probabilities: np.ndarray, features: np.ndarray, images: np.ndarray,
                           stimulus_probabilities: np.ndarray, stimulus_features: np.ndarray,
                           stimuli: np.ndarray, labels: np.ndarray, ways=(2, 5, 10),
                           embeddings: np.ndarray | None = None,
                           stimulus_embeddings: np.ndarray | None = None) -> dict[str, float]:
    """Every metric of one set of reconstructions ([B, ...] each, aligned with the stimuli), and
    ``<metric>_se``, the standard error over the images, for each per-image metric. With the
    image embedder's features of the reconstructions and of the stimuli (``embeddings``,
    ``stimulus_embeddings``), also 2-way identification in them."""
    judged = stimulus_probabilities.argmax(axis=1)
    per_image = {}
    for n in ways:
        per_image[f"top1_{n}way"] = n_way_identification(probabilities, labels, n, per_image=True)
    for n in ways:
        per_image[f"top1_{n}way_judged"] = n_way_identification(probabilities, judged, n, per_image=True)
    per_image["two_way_features"] = two_way_identification(features, stimulus_features, per_image=True)
    if len(np.unique(labels)) < len(labels):  # some class has two images
        per_image["two_way_within_class"] = two_way_identification(features, stimulus_features, labels, per_image=True)
    if embeddings is not None:
        per_image["two_way_embedding"] = two_way_identification(embeddings, stimulus_embeddings, per_image=True)
    per_image["pixcorr"] = pixel_correlation(images, stimuli, per_image=True)
    per_image["ssim"] = ssim(images, stimuli, per_image=True)
    out = {name: float(np.nanmean(values)) for name, values in per_image.items()}
    out["frechet_small_sample"] = frechet_distance(features, stimulus_features)
    out.update({f"{name}_se": standard_error(values) for name, values in per_image.items()})
    return out


def retrieval_top_k(predicted: np.ndarray, candidates: np.ndarray, true_index: np.ndarray, k: int,
                    per_item: bool = False):
    """Share of queries whose own candidate is among the ``k`` nearest by cosine: ``predicted``
    [B, E] (e.g. image embeddings predicted from EEG), ``candidates`` [M, E] (the held-out
    images' embeddings), ``true_index`` [B] (each query's candidate). Chance k / M. Ties
    count against the query. ``per_item``: each query's 0/1 [B]."""
    unit = lambda x: np.asarray(x, np.float64) / (np.linalg.norm(np.asarray(x, np.float64), axis=1, keepdims=True) + 1e-12)
    p, c = unit(predicted), unit(candidates)
    true_index = np.asarray(true_index)
    if p.shape[1] != c.shape[1] or true_index.shape != (len(p),):
        raise ValueError(f"need predicted [B, E], candidates [M, E] and true_index [B], got {p.shape}, {c.shape}, "
                         f"{true_index.shape}")
    if not 1 <= k <= len(c):
        raise ValueError(f"k must be in 1..{len(c)}, got {k}")
    similarity = p @ c.T  # [B, M] cosine
    own = similarity[np.arange(len(p)), true_index][:, None]
    rank = (similarity >= own - 1e-12).sum(axis=1)  # 1 = own candidate strictly best
    hits = (rank <= k).astype(np.float64)
    return hits if per_item else float(hits.mean())


def layout_scores(predicted: np.ndarray, true: np.ndarray, mean_layout: np.ndarray) -> dict[str, float]:
    """How well layouts [B, G, G] are predicted, against predicting ``mean_layout`` [G, G] (the
    training mean) for every image: the mean per-image correlation of each with the truth
    (``correlation``, ``mean_layout_correlation``), R^2 over the images per cell (``r2``) and R^2
    against the mean layout (``r2_vs_mean_layout``; 0: no better than the mean layout)."""
    predicted, true = np.asarray(predicted, np.float64), np.asarray(true, np.float64)
    mean_only = np.broadcast_to(np.asarray(mean_layout, np.float64), true.shape)
    correlation = lambda a: float(np.mean([np.corrcoef(p.ravel(), q.ravel())[0, 1] for p, q in zip(a, true)]))
    residual = ((true - predicted) ** 2).sum()
    return {"correlation": correlation(predicted), "mean_layout_correlation": correlation(mean_only),
            "r2": float(1 - residual / ((true - true.mean(axis=0)) ** 2).sum()),
            "r2_vs_mean_layout": float(1 - residual / ((true - mean_only) ** 2).sum())}


def chance_levels(ways=(2, 5, 10)) -> dict[str, float]:
    levels = {f"top1_{n}way": 1.0 / n for n in ways}
    levels.update({f"top1_{n}way_judged": 1.0 / n for n in ways})
    levels.update({name: 0.5 for name in ("two_way_features", "two_way_within_class", "two_way_embedding")})
    return levels
