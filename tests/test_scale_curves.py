"""The scaling curves' bookkeeping (eegdm_utils.eval.scaling, tools/scale_curves.py) at the smoke scale:
disjoint subject pools and splits, every point's fits written once and skipped when there, the step
counts of one pretraining extended in order, and the summary computed from the fits."""

import sys

import numpy as np
import pytest
import yaml
from conftest import REPO

from eegdm_utils.core.files import read_json
from eegdm_utils.eval.report import BAND_POWER, EEGDM, EEGNET, PROBE, PROBE_UNTRAINED, UNTRAINED
from eegdm_utils.eval.scaling import ScalePlan, fit_path, point_splits, subject_pools
from eegdm_utils.models.ssmdp import SSMDPConfig
from eegdm_utils.train.latent_cache import CacheConfig, build_cache
from eegdm_utils.train.optim import OptimSettings
from eegdm_utils.train.pretraining import PretrainConfig, load_denoiser, train_ssmdp

sys.path.insert(0, str(REPO / "tools"))
import scale_curves  # noqa: E402


def test_the_pools_and_a_points_splits_share_no_subject():
    plan = ScalePlan(labelled=(3, 6), unlabelled=(2, 4), test_subjects=3, base_labelled=3)
    train = [f"sim{i:05d}" for i in range(10)]
    pools = subject_pools(train[::-1], ["sim00010", "sim00011", "sim00012", "sim00013"], plan)
    assert pools["labelled"] == train[:6] and pools["unlabelled"] == train[6:10]  # in the simulator's order
    assert pools["test"] == ["sim00010", "sim00011", "sim00012"]
    window_subject = np.repeat(train + ["sim00010", "sim00011", "sim00012"], 4)
    splits = point_splits(window_subject, pools["labelled"][:6], pools["test"], plan)
    by_split = {s: set(window_subject[i]) for s, i in splits.items()}
    assert by_split["train"] | by_split["val"] == set(train[:6]) and len(by_split["val"]) == 1  # 20% of 6, at least 1
    assert not by_split["train"] & by_split["val"] and by_split["test"] == set(pools["test"])
    with pytest.raises(ValueError, match="training pool and the test set"):
        point_splits(window_subject, ["sim00010"], pools["test"], plan)
    with pytest.raises(ValueError, match="plan needs 6 labelled"):
        subject_pools(train[:8], pools["test"], plan)


@pytest.fixture(scope="module")
def curves(tiny_store, tmp_path_factory):
    """A tiny run (backbone, cache) and the curves of a tiny plan on it."""
    run = tmp_path_factory.mktemp("run")
    config = PretrainConfig(model=SSMDPConfig(d_model=8, d_state=4, n_layer=2, d_cond=16, d_cond_embed=8), batch_size=8,
                            max_steps=2, optim=OptimSettings(lr=1e-3, grad_clip=1.0))
    train_ssmdp(run, tiny_store, config, val_every=10, max_val_samples=8)
    model, pre = load_denoiser(run / "pretrain" / "ssmdp.ckpt")
    build_cache(run / "cache", model, tiny_store, CacheConfig(batch_windows=4), run / "pretrain" / "ssmdp.ckpt",
                vars(pre.model), pre.mu_law, pre.diffusion)
    params = run / "params.yaml"
    params.write_text(yaml.safe_dump({"sim_record_seconds": 30, "sim_seed": 3, "finetune_epochs": 1, "warmup_epochs": 0,
                                      "patience": 1, "lft_batch_size": 32, "lft_tokens": 2, "lft_heads": 2,
                                      "accelerator": "cpu", "batch_windows": 4}))
    argv = [str(run), str(params), "--labelled", "3", "5", "--unlabelled", "2", "--steps", "2", "4", "--seeds", "0",
            "--test-subjects", "3", "--base-labelled", "3", "--sim-dir", str(run / "sim"),
            "--figures", str(run / "figures")]
    scale_curves.main(argv)
    return run / "scale", argv


def _results(scale_dir):
    return {p: p.stat().st_mtime_ns for p in scale_dir.glob("*/*/*/*.json")}


def test_every_point_writes_each_fit_once(curves):
    scale_dir, _ = curves
    expected = [fit_path(scale_dir / "labelled" / f"L{n}", m, 1.0, s)
                for n in (3, 5) for m, s in ((EEGDM, 0), (EEGNET, 0), (PROBE, None), (PROBE_UNTRAINED, None),
                                             (BAND_POWER, None))]
    expected += [fit_path(scale_dir / "unlabelled" / "reference", m, f, s)
                 for f in (1.0, 0.1) for m, s in ((UNTRAINED, 0), (BAND_POWER, None))]
    expected += [fit_path(scale_dir / "unlabelled" / f"U2_s{steps}", m, f, s)
                 for steps in (2, 4) for f in (1.0, 0.1) for m, s in ((EEGDM, 0), (PROBE, None))]
    assert sorted(_results(scale_dir)) == sorted(expected)
    lines = read_json(scale_dir / "test_lines.json")
    for path in expected:
        fit = read_json(path)
        assert len(fit["line_predictions"]) == len(lines["label"])  # every test line of the one test set
    summary = read_json(scale_dir / "summary.json")
    windows = {r["labelled"]: r["train_windows"] for r in summary["rows"] if r["curve"] == "labelled" and r["method"] == EEGDM}
    assert windows[5] > windows[3]
    ten = next(r for r in summary["rows"] if r["point"] == "U2_s2" and r["method"] == EEGDM and r["fraction"] == 0.1)
    assert ten["train_windows"] < windows[3]  # 10% of the base point's labels
    assert summary["test_subjects"] == 3 and summary["conclusions"]
    assert {p.name for p in (scale_dir.parent / "figures" / "scale_curves").glob("*.png")} == {
        "labelled_data.png", "unlabelled_data.png"}


def test_the_pretraining_is_extended_from_one_step_count_to_the_next(curves):
    scale_dir, _ = curves
    import torch

    folder = scale_dir / "unlabelled" / "U2_pretraining" / "pretrain"
    for path in (folder / "ssmdp.ckpt", folder / "checkpoints" / "last.ckpt"):  # a later call resumes from step 4
        assert torch.load(path, weights_only=False)["global_step"] == 4


def test_a_second_call_fits_nothing_and_a_removed_fit_is_fitted_again(curves):
    scale_dir, argv = curves
    before = _results(scale_dir)
    removed = fit_path(scale_dir / "labelled" / "L3", EEGNET, 1.0, 0)
    removed.unlink()
    scale_curves.main(argv)
    after = _results(scale_dir)
    assert set(after) == set(before)
    assert {p for p in after if after[p] != before[p]} == {removed}


def test_the_tuev_prediction_is_refused_where_it_would_leave_kappas_range():
    from eegdm_utils.eval.scaling import _reach, _trend

    rows = [{"curve": "labelled", "labelled": n, "method": m, "train_windows": w, "kappa": k}
            for n, w, lft, band in ((22, 100, 65.0, 61.0), (88, 400, 85.0, 63.0))
            for m, k in ((EEGDM, lft), (BAND_POWER, band))]
    slope, lead, smallest, band_last = _trend(rows, EEGDM, BAND_POWER, tuev_factor=100.0)
    # the lead goes 4 -> 22 over two doublings: +9 per doubling, 100x the smallest is log2(100) = 6.64 doublings
    assert slope == pytest.approx(9.0) and smallest == 100 and band_last == 63.0
    assert lead == pytest.approx(4.0 + 9.0 * np.log2(100.0))
    assert "outside kappa's range" in _reach(lead, band_last, 100.0, smallest)  # 63 + 63.8 > 100
    assert _reach(10.0, band_last, 100.0, smallest).startswith("predicts +10.0")
