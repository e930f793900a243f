"""Baselines and controls: band powers, the linear readout, the untrained backbone, the report's rows."""

import re

import numpy as np
import pandas as pd
import pytest
import torch

from eegdm_utils.core.scoring import per_class_recall
from eegdm_utils.eval.controls import (BANDS_HZ, LinearReadout, band_power_features, cache_probe_features, event_pool,
                                       event_samples, readout_run)
from eegdm_utils.eval.report import REQUIRED_METHODS, check_rows
from eegdm_utils.models.ssmdp import SSMDPConfig
from eegdm_utils.train.latent_cache import weights_sha256
from eegdm_utils.train.optim import OptimSettings
from eegdm_utils.train.pretraining import PretrainConfig, load_denoiser, train_ssmdp, untrained_denoiser


def test_event_second_and_its_pool():
    assert event_samples(1000) == slice(400, 600)
    assert event_pool(1000) == 2  # the third of five 1-s pools
    with pytest.raises(ValueError, match="no event"):
        event_samples(800)


def test_band_powers_of_a_sine_land_in_its_band_with_its_variance():
    fs, amplitude = 200.0, 3.0
    t = np.arange(200) / fs
    x = np.zeros((1, 2, 200))
    x[0, 0] = amplitude * np.sin(2 * np.pi * 10.0 * t)  # alpha
    x[0, 1] = np.nan  # a missing channel
    f = band_power_features(x, fs).reshape(1, 2, 8)
    bands = f[0, 0, : len(BANDS_HZ)]
    assert int(np.argmax(bands)) == 2  # 8-13 Hz
    # Parseval: the band's power (periodogram summed over 1-Hz bins) is the sine's variance A^2 / 2
    assert np.exp(bands[2]) == pytest.approx(amplitude**2 / 2, rel=0.05)
    assert f[0, 0, 6] == pytest.approx(amplitude, rel=0.01) and f[0, 0, 7] == pytest.approx(-amplitude, rel=0.01)
    assert np.isnan(f[0, 1]).all()


def test_cache_probe_features_keep_channels_and_layers():
    latents = np.random.default_rng(0).uniform(0.1, 0.5, size=(3, 4, 5, 22, 8))
    f = cache_probe_features(latents, pool=2)
    assert f.shape == (3, 4 * 22 * 8)
    assert np.allclose(f.reshape(3, 4, 22, 8), np.log(latents[:, :, 2]), atol=1e-6)
    # a channel-averaged probe could not tell these apart: same mean over channels, swapped channels
    swapped = latents.copy()
    swapped[:, :, :, [0, 5]] = latents[:, :, :, [5, 0]]
    assert not np.allclose(cache_probe_features(swapped, 2), f)


def _separable(n, rng, shift):
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 5))
    X[:, 0] += shift * y
    return X, y


def test_readout_chooses_C_on_validation():
    rng = np.random.default_rng(0)
    X, y = _separable(300, rng, 2.5)
    Xv, yv = _separable(150, rng, 2.5)
    X[:20, 1] = np.nan  # missing features are imputed, not fatal
    readout = LinearReadout(3, c_grid=(1e-4, 1e-2, 1.0))
    fitted = readout.fit(X, y, np.ones(len(y)), Xv, yv, np.ones(len(yv)))
    assert fitted.val["kappa"] > 0.5
    # the choice, recomputed independently: one plain fit per C, Cohen's kappa of sklearn on validation
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import cohen_kappa_score

    mean, std = np.nanmean(X, axis=0), np.nanstd(X, axis=0)  # standardised on training, missing -> the mean
    Z, Zv = (np.nan_to_num((A - mean) / std) for A in (X, Xv))
    kappas = {C: cohen_kappa_score(yv, LogisticRegression(C=C, class_weight="balanced", max_iter=3000).fit(Z, y).predict(Zv))
              for C in (1e-4, 1e-2, 1.0)}
    assert fitted.C == max(kappas, key=kappas.get)
    # the kept solution is the chosen C's, not the last one fitted on the path
    alone = LogisticRegression(C=fitted.C, class_weight="balanced", max_iter=3000).fit(Z, y)
    assert np.array_equal(readout.predict(Xv), alone.predict(Zv))


def test_readout_run_scores_every_test_line_once_with_line_weights():
    rng = np.random.default_rng(1)
    windows = {"train": 120, "val": 60, "test": 50}
    features, lines = {}, {}
    for split, n in windows.items():
        label = rng.integers(0, 3, n)
        feats = rng.normal(size=(n, 4))
        feats[:, 0] += 2.0 * label
        features[split] = feats
        repeat = rng.integers(1, 4, n)  # several annotation lines per window
        lines[split] = {"window": np.repeat(np.arange(n), repeat), "label": np.repeat(label, repeat),
                        "channel": np.zeros(repeat.sum(), dtype=int)}
    r = readout_run(features, lines, 3)
    assert r["n"] == len(lines["test"]["label"])
    assert r["balanced_accuracy"] > 0.6
    # the test split never informs the fit: noise as test features leaves C and validation as they were
    noisy = {**features, "test": rng.normal(size=features["test"].shape)}
    r2 = readout_run(noisy, lines, 3)
    assert (r2["C"], r2["val_kappa"]) == (r["C"], r["val_kappa"]) and r2["kappa"] < r["kappa"]


def test_per_class_recall():
    cm = np.array([[3, 1, 0], [0, 0, 0], [2, 2, 4]])
    r = per_class_recall(cm)
    assert r[0] == pytest.approx(0.75) and np.isnan(r[1]) and r[2] == pytest.approx(0.5)


def test_untrained_denoiser_is_exactly_where_pretraining_starts(tiny_store, tmp_path):
    """A pretraining run that cannot move its weights (learning rate 0) ends where the control starts."""
    config = PretrainConfig(model=SSMDPConfig(d_model=8, d_state=4, n_layer=2, d_cond=16, d_cond_embed=8),
                            batch_size=4, max_steps=1, optim=OptimSettings(lr=0.0), seed=3)
    train_ssmdp(tmp_path, tiny_store, config, val_every=10, max_val_samples=4)
    trained, _ = load_denoiser(tmp_path / "pretrain" / "ssmdp.ckpt")
    torch.manual_seed(123)
    state = torch.get_rng_state()
    control = untrained_denoiser(config)
    # the caller's random state is untouched: the next model built (a seed's LFT) does not move with the control
    assert torch.equal(torch.get_rng_state(), state)
    assert weights_sha256(control) == weights_sha256(trained)
    assert not any(p.requires_grad for p in control.parameters())
    other = untrained_denoiser(PretrainConfig(**{**config.__dict__, "seed": 4}))
    assert weights_sha256(other) != weights_sha256(control)


def _table(methods):
    return pd.DataFrame([{"method": m, "label_fraction": f} for m in methods for f in (1.0, 0.1)])


def test_report_refuses_a_table_without_its_baselines_and_controls():
    check_rows(_table(REQUIRED_METHODS), [1.0, 0.1])  # complete: passes
    for dropped in REQUIRED_METHODS:
        with pytest.raises(ValueError, match=re.escape(dropped)):
            check_rows(_table([m for m in REQUIRED_METHODS if m != dropped]), [1.0, 0.1])
    partial = _table(REQUIRED_METHODS)
    partial = partial[~((partial.method == REQUIRED_METHODS[0]) & (partial.label_fraction == 0.1))]
    with pytest.raises(ValueError, match="10%"):
        check_rows(partial, [1.0, 0.1])


def _results(eegdm_kappas, band_kappa):
    from eegdm_utils.eval.report import BAND_POWER, EEGDM, EEGNET, PROBE, PROBE_UNTRAINED, UNTRAINED

    rows = []
    for seed, k in enumerate(eegdm_kappas):
        for method, value in ((EEGDM, k), (UNTRAINED, 0.30), (EEGNET, 0.35)):
            rows.append({"seed": seed, "method": method, "label_fraction": 1.0, "kappa": value,
                         "balanced_accuracy": value, "weighted_f1": value,
                         "confusion": np.array([[8, 2], [1, 9]]) if method == EEGDM else np.eye(2, dtype=int)})
    for method, value in ((BAND_POWER, band_kappa), (PROBE, 0.5), (PROBE_UNTRAINED, 0.45)):
        rows.append({"seed": None, "method": method, "label_fraction": 1.0, "kappa": value, "balanced_accuracy": value,
                     "weighted_f1": value, "confusion": np.eye(2, dtype=int)})
    return pd.DataFrame(rows)


def _interval(low, high):
    return {"difference": (low + high) / 2, "low": low, "high": high}


def test_a_claim_needs_its_interval_above_zero_a_margin_beyond_the_seed_std_and_enough_seeds():
    from eegdm_utils.eval.report import (BAND_POWER, EEGDM, NO_INTERVAL, PROBE, recall_table, summary_table,
                                         target_checks)

    def checks(kappas, band, low=5.0, high=30.0, probe=(-3.0, 4.0)):
        results = _results(kappas, band)
        intervals = {(EEGDM, BAND_POWER, "kappa", 1.0): _interval(low, high), (EEGDM, PROBE, "kappa", 1.0): _interval(*probe)}
        return target_checks(summary_table(results), recall_table(results, ["a", "b"]), [1.0], intervals).set_index("claim")

    band = "EEGDM above band powers + logistic regression (kappa)"
    clear = checks([0.60, 0.62, 0.58, 0.61, 0.59], 0.40)  # std 1.4 (x100): +20 is far beyond it, interval above 0
    assert clear.loc[band, "holds"] == True  # noqa: E712 (a numpy bool)
    assert clear.loc[band, "interval"] == "[+5.00, +30.00]"
    assert clear.loc["LFT not below the linear probe on its cache (kappa)", "holds"] == True  # noqa: E712
    assert clear.loc["EEGDM recalls every class >= 0.2", "holds"] == True  # noqa: E712
    assert checks([0.60, 0.62, 0.58, 0.61, 0.59], 0.40, low=-2.0).loc[band, "holds"] == False  # noqa: E712 (interval has 0)
    assert checks([0.6] * 5, 0.4, probe=(-9.0, -1.0)).loc["LFT not below the linear probe on its cache (kappa)",
                                                          "holds"] == False  # noqa: E712 (interval below 0)
    noisy = checks([0.20, 0.80, 0.30, 0.70, 0.50], 0.40)  # mean 0.50 but std 22: +10 is not enough
    assert noisy.loc[band, "holds"] == False  # noqa: E712
    assert checks([0.90], 0.40).loc[band, "holds"] == "not assessed"
    assert clear.loc["EEGDM above EEGNet (kappa)", "holds"] == NO_INTERVAL  # no interval, no claim


def test_claim_intervals_come_from_the_line_predictions_of_every_seed():
    from eegdm_utils.eval.report import BAND_POWER, EEGDM, claim_intervals

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 120)
    subjects = np.repeat(["s1", "s2", "s3", "s4"], 30)
    results = _results([0.6, 0.6, 0.6], 0.4)
    results["line_predictions"] = [None] * len(results)
    perfect, coin = labels.copy(), rng.integers(0, 2, 120)
    for i, r in results.iterrows():
        results.at[i, "line_predictions"] = perfect if r.method == EEGDM else coin if r.method == BAND_POWER else None
    out = claim_intervals(results, {"label": labels, "subject": subjects}, 2, [1.0], n_boot=200)
    assert set(out) == {(EEGDM, BAND_POWER, "kappa", 1.0), (EEGDM, BAND_POWER, "balanced_accuracy", 1.0)}
    kappa = out[(EEGDM, BAND_POWER, "kappa", 1.0)]
    from sklearn.metrics import cohen_kappa_score

    assert kappa["difference"] == pytest.approx(100 * (1.0 - cohen_kappa_score(labels, coin)))
    assert 0 < kappa["low"] <= kappa["difference"] <= kappa["high"] <= 100 * 2
    results.at[results.index[0], "line_predictions"] = perfect[:-1]
    with pytest.raises(ValueError, match="predicts 119 test lines, the store has 120"):
        claim_intervals(results, {"label": labels, "subject": subjects}, 2, [1.0], n_boot=10)


def test_variant_pass_matches_the_cache_path(tiny_store):
    """One pass for gate/filter x std/mean gives, for gate std, exactly what the cache computes."""
    from eegdm_utils.models.diffusion import DiffusionConfig, ddpm_scheduler
    from eegdm_utils.models.ssmdp import SSMDP
    from eegdm_utils.train.latent_cache import CacheConfig, variant_latents, window_latents

    torch.manual_seed(0)
    net = SSMDP(SSMDPConfig(d_model=8, d_state=4, n_layer=2, d_cond=16, d_cond_embed=8)).eval()
    scheduler = ddpm_scheduler(DiffusionConfig())
    out = variant_latents(net, tiny_store, "val", 2, scheduler, True, batch_windows=3)
    windows, present = np.asarray(tiny_store.windows("val")), tiny_store.present("val")
    for query, reduction in (("gate", "std"), ("filter", "mean")):
        expected = window_latents(net, windows, present, CacheConfig(query=query, reduction=reduction), scheduler, True)
        assert np.allclose(out[(query, reduction)], expected[:, :, 2], atol=1e-5, equal_nan=True)


def test_report_reads_the_foundation_rows_when_notebook_90_ran(tmp_path):
    from eegdm_utils.core.files import atomic_write_json
    from eegdm_utils.eval.report import FOUNDATION_METHODS, collect_foundation_results

    assert collect_foundation_results(tmp_path) is None  # notebook 90 has not run: no rows, no error
    metrics = {"kappa": 0.5, "balanced_accuracy": 0.4, "weighted_f1": 0.6, "confusion": [[1, 0], [0, 1]]}
    rows = [{"seed": s, "method": m, "label_fraction": f, "val_kappa": 0.3, "epochs": 5, **metrics}
            for m in FOUNDATION_METHODS for f in (1.0, 0.1) for s in (0, 1)]
    atomic_write_json(tmp_path / "foundation" / "metrics.json", {"results": rows})
    table = collect_foundation_results(tmp_path)
    assert len(table) == len(rows) and set(table.method) == set(FOUNDATION_METHODS)
    assert table.confusion.iloc[0].shape == (2, 2) and table.seed.tolist()[:2] == [0, 1]


def test_stored_array_computes_once_per_settings_and_survives_a_failed_compute(tmp_path):
    from eegdm_utils.core.files import stored_array

    calls = []

    def compute(value):
        def run():
            calls.append(value)
            return np.full(3, value, dtype=np.float32)
        return run

    path = tmp_path / "latents.npy"
    assert stored_array(path, {"t": 1}, compute(1.0)).tolist() == [1.0] * 3
    assert stored_array(path, {"t": 1}, compute(9.0)).tolist() == [1.0] * 3  # read back, not computed
    assert calls == [1.0]
    assert stored_array(path, {"t": 2}, compute(2.0)).tolist() == [2.0] * 3  # other settings: computed again
    assert calls == [1.0, 2.0]

    def fails():
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        stored_array(path, {"t": 3}, fails)
    assert stored_array(path, {"t": 2}, compute(7.0)).tolist() == [2.0] * 3  # what was written is intact
    assert calls == [1.0, 2.0]


def test_stored_test_latents_equal_the_raw_path_and_follow_the_backbone(tiny_store, tmp_path):
    from eegdm_utils.models.diffusion import DiffusionConfig, ddpm_scheduler
    from eegdm_utils.models.ssmdp import SSMDP
    from eegdm_utils.train.latent_cache import CacheConfig, stored_test_latents, test_latents

    torch.manual_seed(0)
    net = SSMDP(SSMDPConfig(d_model=8, d_state=4, n_layer=2, d_cond=16, d_cond_embed=8)).eval()
    scheduler, config = ddpm_scheduler(DiffusionConfig()), CacheConfig(batch_windows=4)
    path = tmp_path / "test_latents.npy"
    first = stored_test_latents(path, net, tiny_store, config, scheduler, True)
    assert np.array_equal(first, test_latents(net, tiny_store, config, scheduler, True), equal_nan=True)
    assert first.shape[0] == tiny_store.meta["shapes"]["test"][0]
    with torch.no_grad():
        net.blocks[0].in_linear.weight.mul_(2.0)  # other weights: the stored latents no longer apply
    second = stored_test_latents(path, net, tiny_store, config, scheduler, True)
    assert not np.allclose(second, first, equal_nan=True)
    assert np.array_equal(second, test_latents(net, tiny_store, config, scheduler, True), equal_nan=True)
    reduced = stored_test_latents(tmp_path / "fs190.npy", net, tiny_store, config, scheduler, True, fs=190.0)
    # 950 samples in the cache's 200-sample pools: four of the five (the reference's reduce_sampling)
    assert reduced.shape == (second.shape[0], second.shape[1], 4, *second.shape[3:])


def test_eegfoundation_is_claimed_above_its_head_alone_only_when_notebook_90_ran_and_its_interval_says_so():
    import pandas as pd

    from eegdm_utils.eval.report import FOUNDATION_METHODS, recall_table, summary_table, target_checks

    claim = "EEGFoundation above its head without the embedding (kappa)"
    results = _results([0.6] * 3, 0.4)
    table = lambda r: summary_table(r)  # noqa: E731
    without = target_checks(table(results), recall_table(results, ["a", "b"]), [1.0]).set_index("claim")
    assert claim not in without.index  # notebook 90 did not run: no such claim
    rows = [{"seed": s, "method": m, "label_fraction": 1.0, "kappa": k, "balanced_accuracy": k, "weighted_f1": k,
             "confusion": np.eye(2, dtype=int)} for s in range(3)
            for m, k in ((FOUNDATION_METHODS[0], 0.30 + 0.01 * s), (FOUNDATION_METHODS[3], 0.10))]
    results = pd.concat([results, pd.DataFrame(rows)], ignore_index=True)
    key = (FOUNDATION_METHODS[0], FOUNDATION_METHODS[3], "kappa", 1.0)
    for interval, holds in (((5.0, 30.0), True), ((-1.0, 30.0), False)):
        checks = target_checks(table(results), recall_table(results, ["a", "b"]), [1.0],
                               {key: _interval(*interval)}).set_index("claim")
        assert checks.loc[claim, "holds"] == holds
        assert checks.loc[claim, "measured"].startswith("+21.00")  # mean 31 - 10 (x100), from the rows
