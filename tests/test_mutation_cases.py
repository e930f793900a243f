"""Hand-made cases for the core modules that `make mutation` showed untested (docs/mutation.md):
the DDIM scheduler's settings, the tokenizers' argument checks, balanced class weights, the
store's consistency check and the cache's mismatch message."""

import json
import shutil
from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from eegdm_utils.data.recordings import DataError
from eegdm_utils.data.store import EEGStore, check_store
from eegdm_utils.foundation.tokenizer import N_LEVELS, VOCAB_SIZE, AmplitudeTokenizer, MinMaxTokenizer
from eegdm_utils.models.diffusion import DiffusionConfig, ddim_scheduler, ddpm_scheduler
from eegdm_utils.train.finetuning import class_weights


@pytest.mark.parametrize("schedule", ["squaredcos_cap_v2", "linear"])
def test_ddim_scheduler_shares_the_training_schedule_and_ends_at_alpha_one(schedule):
    config = DiffusionConfig(beta_schedule=schedule)
    ddim, ddpm = ddim_scheduler(config), ddpm_scheduler(config)
    assert torch.equal(ddim.alphas_cumprod, ddpm.alphas_cumprod)
    assert ddim.config.prediction_type == "v_prediction" and ddim.config.num_train_timesteps == 50
    assert float(ddim.final_alpha_cumprod) == 1.0  # set_alpha_to_one: the last step lands on x_0
    assert ddim.config.clip_sample is False


def test_tokenizer_argument_checks():
    with pytest.raises(ValueError, match="decode takes amplitude ids"):
        MinMaxTokenizer().decode(torch.tensor([0, N_LEVELS]))
    assert MinMaxTokenizer().decode(torch.tensor([N_LEVELS - 1])).item() == 1.0
    with pytest.raises(ValueError, match="range_uv must be positive"):
        AmplitudeTokenizer(range_uv=0.0)
    assert AmplitudeTokenizer(range_uv=0.5).range_uv == 0.5
    # only one bound given: the [0, 1] scale, not a half-scaled signal
    ids = torch.tensor([0, 1999])
    assert MinMaxTokenizer().decode(ids, low=torch.tensor(5.0)).tolist() == [0.0, 1.0]


def test_balanced_class_weights_written_out_with_an_absent_last_class():
    labels = np.array([0, 0, 0, 1])
    weights = np.array([1.0, 1.0, 2.0, 1.0])  # annotation lines each example stands for
    w = class_weights(SimpleNamespace(labels=labels, weights=weights), 3)
    assert w.dtype == torch.float32
    # n / (C_present * n_c): 5 lines, 2 present classes, class 0 has 4 lines and class 1 one
    assert w.tolist() == pytest.approx([5 / (2 * 4), 5 / (2 * 1), 0.0])


def _store_copy(tiny_store, tmp_path, edit):
    copy = tmp_path / "store"
    shutil.copytree(tiny_store.path, copy)
    meta = json.loads((copy / "meta.json").read_text())
    edit(meta)
    (copy / "meta.json").write_text(json.dumps(meta))
    return EEGStore(copy)


def test_check_store_finds_leaks_and_lost_lines(tiny_store, tiny_corpus, tmp_path):
    from eegdm_utils.data.recordings import collect_tuev

    specs = collect_tuev(tiny_corpus)
    check_store(tiny_store, specs)  # the healthy store passes
    for split in ("train", "val"):
        def leak(meta, split=split):
            meta["subjects"]["test"] = meta["subjects"]["test"] + meta["subjects"][split][:1]
        with pytest.raises(DataError, match="are in the test split and in training"):
            check_store(_store_copy(tiny_store, tmp_path / split, leak), specs)

    def lose(meta):
        meta["n_faithful"]["train"] -= 1
    with pytest.raises(DataError, match="annotation lines in the label files"):
        check_store(_store_copy(tiny_store, tmp_path / "lose", lose), specs)

    def tiled(meta):  # lines tiled from whole-file labels are not annotation lines
        meta["n_faithful"]["train"] += 3
        meta["n_whole_file_lines"] = 3
    check_store(_store_copy(tiny_store, tmp_path / "tiled", tiled), specs)

    def old_meta(meta):  # a store from before whole-file labels, or without validation or test subjects
        del meta["n_whole_file_lines"]
        meta["subjects"] = {"train": meta["subjects"]["train"]}
    check_store(_store_copy(tiny_store, tmp_path / "old", old_meta), specs)

    def leak_no_val(meta):
        meta["subjects"] = {"train": meta["subjects"]["train"], "test": meta["subjects"]["train"][:1]}
    with pytest.raises(DataError, match="are in the test split and in training"):
        check_store(_store_copy(tiny_store, tmp_path / "leak_no_val", leak_no_val), specs)

    def leak_no_train(meta):
        meta["subjects"] = {"val": meta["subjects"]["val"], "test": meta["subjects"]["val"][:1]}
    with pytest.raises(DataError, match="are in the test split and in training"):
        check_store(_store_copy(tiny_store, tmp_path / "leak_no_train", leak_no_train), specs)

    def skipped(meta):  # a skipped line accounts for a line missing from the store
        meta["n_faithful"]["train"] -= 1
        meta["skipped_lines"] = meta["skipped_lines"] + [{"file": "x.edf", "reason": "x.rec:1: lasts 2 s"}]
    check_store(_store_copy(tiny_store, tmp_path / "skipped", skipped), specs)


def test_cache_mismatch_names_each_setting_with_both_values(tmp_path):
    from eegdm_utils.train.latent_cache import CacheMismatch, LatentCache

    cache = LatentCache.__new__(LatentCache)
    cache.path = tmp_path
    cache.meta = {"settings": {"step": 1, "pool": {"size": 200}, "mu_law": True}}
    with pytest.raises(CacheMismatch, match=r"\(pool\.size, step differ: pool\.size: cache \{'size': 200\} vs \{'size': 100\}; step: cache 1 vs 2\)"):
        cache.check({"step": 2, "pool": {"size": 100}, "mu_law": True})
    cache.check({"step": 1, "pool": {"size": 200}, "mu_law": True})


# --- controls: band powers against a periodogram written out, recall, the linear readout -------

def _band_powers_by_hand(x: np.ndarray, fs: float) -> np.ndarray:
    """One-sided periodic-Hann periodogram (density x bin width = power per bin), summed per band."""
    from eegdm_utils.eval.controls import BANDS_HZ

    N = len(x)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N) / N)
    X = np.fft.rfft((x - x.mean()) * w)
    p = np.abs(X) ** 2 / (fs * (w ** 2).sum())
    p[1:-1] *= 2  # one-sided (N even: the last bin is Nyquist)
    freqs = np.arange(len(p)) * fs / N
    p = p * (fs / N)
    return np.array([np.log(p[(freqs >= lo) & (freqs < hi)].sum() + 1e-12) for lo, hi in BANDS_HZ])


def test_band_power_features_against_a_periodogram_written_out():
    from eegdm_utils.eval.controls import band_power_features

    fs, N = 200.0, 1000
    t = np.arange(N) / fs
    rng = np.random.default_rng(0)
    x = np.stack([np.stack([3 * np.sin(2 * np.pi * 8.0 * t) + 0.1 * rng.standard_normal(N),  # on a band edge
                            np.sin(2 * np.pi * 45.0 * t) + 2 * np.sin(2 * np.pi * 20.0 * t)])])  # [1, 2, N]
    feats = band_power_features(x)
    assert feats.shape == (1, 16) and feats.dtype == np.float32
    for k in range(2):
        np.testing.assert_allclose(feats[0, 8 * k:8 * k + 6], _band_powers_by_hand(x[0, k], fs), rtol=1e-5, atol=1e-5)
        assert feats[0, 8 * k + 6] == pytest.approx(x[0, k].max(), rel=1e-6)
        assert feats[0, 8 * k + 7] == pytest.approx(x[0, k].min(), rel=1e-6)
    span = slice(200, 800)
    np.testing.assert_allclose(band_power_features(x, span=span)[0, :6], _band_powers_by_hand(x[0, 0, span], fs),
                               rtol=1e-5, atol=1e-5)


def test_per_class_recall_written_out():
    from eegdm_utils.core.scoring import per_class_recall

    recall = per_class_recall([[2, 1, 0], [0, 0, 0], [1, 1, 3]])
    assert recall[0] == pytest.approx(2 / 3) and np.isnan(recall[1]) and recall[2] == pytest.approx(3 / 5)
    assert per_class_recall([[1, 0], [1, 1]]).tolist() == [1.0, 0.5]


def test_linear_readout_standardises_imputes_and_weights():
    from sklearn.linear_model import LogisticRegression

    from eegdm_utils.eval.controls import LinearReadout

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    X = rng.standard_normal((60, 4)) + 3 * np.eye(3, 4)[y] + np.array([10.0, -5.0, 0.0, 2.0])
    X[:, 3] *= 100.0
    w = rng.integers(1, 4, 60).astype(float)
    readout = LinearReadout(3, c_grid=(0.01, 1.0))
    result = readout.fit(X, y, w, X, y, w)
    assert readout.C == result.C and set(result.val_kappa_by_C) == {0.01, 1.0}
    assert all(v == round(v, 4) for v in result.val_kappa_by_C.values())
    np.testing.assert_allclose(readout.mean, X.mean(0))
    np.testing.assert_allclose(readout.scale, X.std(0))
    # the chosen solution is sklearn's on the standardised features with these sample weights
    Z = (X - X.mean(0)) / X.std(0)
    ref = LogisticRegression(class_weight="balanced", C=result.C, max_iter=1000).fit(Z, y, sample_weight=w)
    np.testing.assert_allclose(readout.model.coef_, ref.coef_, rtol=1e-2, atol=1e-3)
    # a missing value is the training mean
    row = X[:1].copy()
    row[0, 1] = np.nan
    filled = X[:1].copy()
    filled[0, 1] = X[:, 1].mean()
    np.testing.assert_allclose(readout.log_proba(row), readout.log_proba(filled))
    assert readout.predict(row).tolist() == readout.predict(filled).tolist()


def test_linear_readout_keeps_the_first_of_equally_good_c():
    from eegdm_utils.eval.controls import LinearReadout

    y = np.repeat([0, 1], 10)
    X = np.c_[np.where(y == 1, 5.0, -5.0), np.zeros(20)] + np.random.default_rng(1).normal(0, 0.1, (20, 2))
    result = LinearReadout(2, c_grid=(0.1, 1.0, 10.0)).fit(X, y, np.ones(20), X, y, np.ones(20))
    assert result.val_kappa_by_C == {0.1: 1.0, 1.0: 1.0, 10.0: 1.0} and result.C == 0.1
    assert LinearReadout(2).max_iter == 1000


# --- pretraining's validation step ---------------------------------------------------------------

def test_validation_loss_uses_the_ema_model_and_fixed_noise_per_batch():
    from eegdm_utils.models.ssmdp import SSMDPConfig
    from eegdm_utils.train.pretraining import SSMDPModule

    small = SSMDPConfig(d_model=8, d_state=4, n_layer=2, d_cond=16, d_cond_embed=8)
    module = SSMDPModule({"model": small.__dict__, "seed": 3})
    with torch.no_grad():
        for p in module.ema.ema_model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    logged = []
    module.log = lambda name, value, **kw: logged.append((name, float(value), kw))
    x0, channel = torch.randn(4, 1, 32, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 3])
    module.validation_step((x0, channel), 5)
    module.validation_step((x0, channel), 5)
    g = torch.Generator().manual_seed(4 * 1_000_003 + 5)  # seed + 1, batch index 5
    expected = float(module.diffusion_loss(module.ema.ema_model, x0, channel, g))
    with torch.no_grad():
        online = float(module.diffusion_loss(module.model, x0, channel, torch.Generator().manual_seed(4 * 1_000_003 + 5)))
    assert expected != pytest.approx(online)  # the EMA model, not the online one
    assert [name for name, _, _ in logged] == ["val_loss", "val_loss"]
    assert logged[0][1] == pytest.approx(expected, rel=1e-6) and logged[1][1] == logged[0][1]
    assert logged[0][2] == {"on_step": False, "on_epoch": True, "prog_bar": True, "sync_dist": True}


def test_event_pool_is_the_pool_holding_the_event_start():
    from eegdm_utils.eval.controls import event_pool

    assert event_pool(1000) == 2 and isinstance(event_pool(1000), int)  # 400 // 200
    assert event_pool(1000, pool=300) == 1  # 400 // 300, not 1.33
    assert event_pool(1000, pool=401) == 0  # 2 s at 200 Hz is sample 400
    assert event_pool(950, pool=390, sfreq=190.0) == 0  # 380 // 390: the rate given is used


def test_cache_probe_features_take_the_layers_asked_for():
    from eegdm_utils.eval.controls import cache_probe_features

    latents = np.random.default_rng(0).uniform(0.1, 1.0, (2, 3, 5, 4, 6)).astype(np.float32)  # [N, n, P, K, H]
    all_layers = cache_probe_features(latents, 2)
    two = cache_probe_features(latents, 2, layers=[0, 2])
    assert all_layers.shape == (2, 3 * 4 * 6) and two.shape == (2, 2 * 4 * 6)
    np.testing.assert_allclose(two, np.log(latents[:, [0, 2], 2]).reshape(2, -1), rtol=1e-5)


def test_readout_scores_validation_by_annotation_lines_and_scales_each_feature():
    from sklearn.metrics import cohen_kappa_score

    from eegdm_utils.eval.controls import LinearReadout

    rng = np.random.default_rng(3)
    y = np.repeat([0, 1, 2], 30)
    X = np.c_[rng.standard_normal((90, 2)) + 0.8 * np.eye(3, 2)[y], 0.3 * rng.standard_normal(90), np.full(90, 7.0)]
    w = rng.integers(1, 5, 90).astype(float)
    X_val = X + 0.8 * rng.standard_normal(X.shape)
    readout = LinearReadout(3, c_grid=(0.003, 0.1, 10.0))
    result = readout.fit(X, y, w, X_val, y, w)
    np.testing.assert_allclose(readout.scale, [*X[:, :3].std(0), 1.0])  # a constant feature keeps scale 1
    pred = readout.predict(X_val)
    lines_kappa = cohen_kappa_score(np.repeat(y, w.astype(int)), np.repeat(pred, w.astype(int)))
    assert result.val["kappa"] == pytest.approx(lines_kappa)  # weighted by the lines each example stands for
    assert result.val_kappa_by_C[result.C] == round(lines_kappa, 4)
    assert all(isinstance(v, float) for v in result.val_kappa_by_C.values())


def test_readout_run_uses_the_training_subset_and_grid_asked_for():
    from eegdm_utils.eval.controls import line_examples, readout_run

    rng = np.random.default_rng(4)

    def split(n):
        label = np.repeat([0, 1], n // 2).astype(np.int8)
        return {"window": np.arange(n, dtype=np.int32), "label": label, "channel": np.full(n, -1, np.int8)}, \
            rng.standard_normal((n, 3)) + 2.0 * label[:, None]

    lines, features = {}, {}
    for s, n in (("train", 40), ("val", 20), ("test", 20)):
        lines[s], features[s] = split(n)
    windows, labels, weights = line_examples(lines["train"], np.array([0, 1, 39]))
    assert sorted(windows.tolist()) == [0, 1, 39] and sorted(labels.tolist()) == [0, 0, 1]
    out = readout_run(features, lines, 2, train_indices=np.arange(0, 40, 2), c_grid=(0.5,))
    assert out["C"] == 0.5 and set(out["val_kappa_by_C"]) == {0.5}
    assert {"val_kappa", "val_balanced_accuracy", "val_kappa_by_C", "C", "kappa"} <= set(out)
    # lines 20..39 annotate the same windows as 0..19 with the other label: only the subset is learnable
    label = np.repeat([0, 1], 10).astype(np.int8)
    both = {"window": np.tile(np.arange(20, dtype=np.int32), 2), "label": np.r_[label, 1 - label],
            "channel": np.full(40, -1, np.int8)}
    feats = {**features, "train": rng.standard_normal((20, 3)) + 2.0 * label[:, None]}
    subset = readout_run(feats, {**lines, "train": both}, 2, train_indices=np.arange(20), c_grid=(0.5,))
    assert subset["val_kappa"] > 0.6  # trained on the lines given, not on all of them


# --- EDF: the writer's bytes against a header and records written out from the specification ----

def test_write_edf_bytes_follow_the_specification(tmp_path):
    from eegdm_utils.data.edf import write_edf

    data = np.array([[-3200.0, 0.0, 3200.0, 1600.0, 9999.0, -9999.0, 1.0, -1.0],
                     [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0]])
    write_edf(tmp_path / "g.edf", data, 4, ["EEG FP1-REF", "Ch µ2"])
    pad = lambda text, width: text.encode("ascii").ljust(width)
    header = b"".join([pad("0", 8), pad("X X X X", 80), pad("Startdate 01-JAN-2001 X X X", 80), pad("01.01.01", 8),
                       pad("00.00.00", 8), pad("768", 8), pad("", 44), pad("2", 8), pad("1", 8), pad("2", 4),
                       pad("EEG FP1-REF", 16), pad("Ch ?2", 16), pad("", 160), pad("uV", 8) * 2,
                       pad("-3200", 8) * 2, pad("3200", 8) * 2, pad("-32768", 8) * 2, pad("32767", 8) * 2,
                       pad("HP:0.1Hz LP:100Hz", 80) * 2, pad("4", 8) * 2, pad("", 64)])
    raw = (tmp_path / "g.edf").read_bytes()
    assert raw[:768] == header
    gain = 6400 / 65535
    digital = np.clip(np.round((np.clip(data, -3200, 3200) + 3200) / gain - 32768), -32768, 32767)
    assert digital[0, :3].tolist() == [-32768, 0, 32767]  # the range's ends and its middle
    records = np.frombuffer(raw[768:], "<i2").reshape(2, 2, 4)  # [record, channel, sample]
    assert np.array_equal(records.transpose(1, 0, 2).reshape(2, 8), digital)


@pytest.mark.parametrize("value, text", [(3200.0, "3200"), (-3200.0, "-3200"), (0.5, "0.5"), (0.0, "0"),
                                         (1234.56789, "1234.568"), (-1234.56789, "-1234.57"),
                                         (12345678.9, "12345679"), (-123.4, "-123.4"), (0.000123, "0.000123")])
def test_edf_header_numbers_fit_eight_characters(value, text):
    from eegdm_utils.data.edf import _number

    assert _number(value) == text


def test_write_edf_refuses_a_rate_or_range_it_cannot_write(tmp_path):
    from eegdm_utils.data.edf import write_edf

    with pytest.raises(ValueError, match="not a whole number of 1-s records"):
        write_edf(tmp_path / "a.edf", np.zeros((1, 512)), 256.5, ["EEG FP1-REF"])
    with pytest.raises(ValueError, match="cannot be written"):
        write_edf(tmp_path / "b.edf", np.zeros((1, 4)), 4, ["EEG FP1-REF"], physical_range_uv=0.0)
    with pytest.raises(ValueError, match="2 signals but 1 channel names"):
        write_edf(tmp_path / "c.edf", np.zeros((2, 4)), 4, ["EEG FP1-REF"])


def test_store_describes_itself(tiny_store):
    meta = tiny_store.meta
    expected = ", ".join(f"{s}: {meta['n_faithful'][s]} lines / {meta['shapes'][s][0]} windows"
                         for s in ("train", "val", "test"))
    assert repr(tiny_store) == f"EEGStore({tiny_store.path}; {expected})"


def test_label_fraction_above_one_is_refused():
    from eegdm_utils.train.finetuning import label_subset

    with pytest.raises(ValueError, match="label fraction must be in"):
        label_subset(np.array([0, 1, 1]), 1.5, 0)


# --- EEGFoundation: tokenizer shapes and factory, the masking collator's settings ---------------

def test_tokenizers_work_on_any_leading_shape_and_count_bad_windows():
    from eegdm_utils.foundation.tokenizer import MinMaxTokenizer

    x = torch.tensor([[[0.0, 1.0, 2.0], [5.0, 3.0, 4.0]], [[1.0, 1.0, 3.0], [-1.0, 0.0, 1.0]]])  # [2, 2, 3]
    low, high = MinMaxTokenizer().bounds(x)
    assert low.squeeze(-1).tolist() == [[0.0, 3.0], [1.0, -1.0]] and high.squeeze(-1).tolist() == [[2.0, 5.0], [3.0, 1.0]]
    assert MinMaxTokenizer().encode(torch.tensor([0.0, 0.5, 1.0])).tolist() == [0, 1000, 1999]  # one window [L]
    assert MinMaxTokenizer().encode(torch.tensor([[0, 1, 2]])).tolist() == [[0, 1000, 1999]]  # integers too
    bad = x.clone()
    bad[1, 0, 2] = float("nan")
    with pytest.raises(ValueError, match="cannot tokenize 1 of 4 channel windows"):
        MinMaxTokenizer().encode(bad)


def test_make_tokenizer_passes_every_setting():
    from eegdm_utils.foundation.tokenizer import TokenizerConfig, make_tokenizer

    tok = make_tokenizer(TokenizerConfig(kind="amplitude", range_uv=50.0, spacing="mulaw", mu=100.0, unit_uv=10.0))
    assert tok == AmplitudeTokenizer(range_uv=50.0, spacing="mulaw", mu=100.0, unit_uv=10.0)
    assert isinstance(make_tokenizer(TokenizerConfig()), MinMaxTokenizer)
    with pytest.raises(ValueError, match="tokenizer kind"):
        make_tokenizer(TokenizerConfig(kind="other"))


def test_masking_collator_uses_its_config_and_generator():
    from eegdm_utils.foundation.collator import MaskingCollator, MaskingConfig, mask_tokens
    from eegdm_utils.foundation.tokenizer import MASK_ID

    x = torch.randn(3, 10, generator=torch.Generator().manual_seed(0))
    everything = MaskingCollator(MinMaxTokenizer(), MaskingConfig(probability=1.0, mask_fraction=1.0, random_fraction=0.0))
    batch = everything.mask_batch(x, torch.Generator().manual_seed(1))
    assert batch["input_ids"].shape == (3, 10) and (batch["input_ids"] == MASK_ID).all()
    ids = MinMaxTokenizer().encode(x)
    items = [(x[i:i + 1], i) for i in range(3)]
    for generator, seed in ((None, 0), (torch.Generator().manual_seed(7), 7)):
        collated = MaskingCollator(MinMaxTokenizer(), generator=generator)(items)
        expected, labels = mask_tokens(ids, torch.Generator().manual_seed(seed))
        assert torch.equal(collated["input_ids"], expected) and torch.equal(collated["labels"], labels)
        assert collated["channel"].tolist() == [0, 1, 2]


def test_random_replacements_cover_the_whole_vocabulary():
    from eegdm_utils.foundation.collator import MaskingConfig, mask_tokens

    ids = torch.full((400, 2000), 5, dtype=torch.long)
    inputs, labels = mask_tokens(ids, torch.Generator().manual_seed(0), MaskingConfig(probability=1.0, mask_fraction=0.0,
                                                                                      random_fraction=1.0))
    assert int(inputs.min()) == 0 and int(inputs.max()) == VOCAB_SIZE - 1  # ids 0..2005, both ends included


# --- the classifier's Lightning steps, written out ---------------------------------------------

class _PresentAware(torch.nn.Module):
    """logits that depend on x and on which channels are present."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([[1.0, -1.0, 0.5], [0.3, 0.2, -0.7]]))

    def forward(self, x, present):
        return x @ self.w + (0.0 if present is None else present.float().sum(-1, keepdim=True) * torch.tensor([0.1, 0.0, -0.1]))


def _smoothed_ce(logits, y, eps):
    logp = torch.log_softmax(logits, -1)
    return -(1 - eps) * logp[torch.arange(len(y)), y] - eps * logp.mean(-1)


@pytest.mark.parametrize("weights", [None, torch.tensor([0.5, 2.0, 1.0])])
def test_classifier_steps_written_out(weights):
    from sklearn.metrics import cohen_kappa_score

    from eegdm_utils.train.finetuning import ClassifierModule, FinetuneConfig

    config = FinetuneConfig(label_smoothing=0.1, ema_beta=0.9)
    module = ClassifierModule(_PresentAware(), config, [], 3, describe={"what": "test"}, class_weights=weights)
    assert module.hparams["finetune"]["ema_beta"] == 0.9 and module.hparams["describe"] == {"what": "test"}
    assert ClassifierModule(_PresentAware(), config, [], 3).hparams["describe"] == {}
    assert module.ema.beta == 0.9 and not any(k.startswith("ema.online") for k in module.state_dict())
    assert "class_weights" not in module.state_dict()
    logged = []
    module.log = lambda name, value, **kw: logged.append((name, float(value), kw))
    x = torch.tensor([[1.0, 2.0], [0.5, -1.0], [2.0, 0.0], [-1.0, 1.0]])
    present = torch.tensor([[True, True], [True, False], [False, False], [True, True]])
    y, w = torch.tensor([0, 1, 2, 1]), torch.tensor([1.0, 3.0, 1.0, 2.0])
    loss = module.training_step((x, present, y, w), 0)
    cw = w * (weights[y] if weights is not None else 1.0)
    logits = x @ module.net.w.detach() + present.float().sum(-1, keepdim=True) * torch.tensor([0.1, 0.0, -0.1])
    expected = (_smoothed_ce(logits, y, 0.1) * cw).sum() / cw.sum()
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    assert logged[-1] == ("train_loss", pytest.approx(float(expected), rel=1e-5),
                          {"on_step": False, "on_epoch": True, "prog_bar": True})
    with torch.no_grad():
        module.ema.ema_model.w.mul_(-1.0)  # the EMA weights, not the online ones, are validated
    ema_logits = x @ module.ema.ema_model.w.detach() + present.float().sum(-1, keepdim=True) * torch.tensor([0.1, 0.0, -0.1])
    module.validation_step((x, present, y, w), 0)
    val = (_smoothed_ce(ema_logits, y, 0.0) * w).sum() / w.sum()
    assert logged[-1] == ("val_loss", pytest.approx(float(val), rel=1e-5),
                          {"on_epoch": True, "prog_bar": False, "sync_dist": True})
    module.on_validation_epoch_end()
    pred = ema_logits.argmax(-1)
    kappa = cohen_kappa_score(np.repeat(y.numpy(), w.int().numpy()), np.repeat(pred.numpy(), w.int().numpy()))
    assert logged[-3][0] == "val_kappa" and logged[-3][1] == pytest.approx(kappa) and logged[-3][2] == {"prog_bar": True}
    assert [name for name, _, _ in logged[-2:]] == ["val_bacc", "val_f1"]


# --- metrics against scikit-learn on the lines expanded, edge cases included ---------------------

@pytest.mark.parametrize("y_true, y_pred", [
    ([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 0, 2]),
    ([0, 0, 1, 1], [0, 2, 2, 1]),  # class 2 predicted, never true
    ([0, 1, 1, 2], [0, 0, 0, 0]),  # classes 1 and 2 never predicted
])
def test_metrics_against_scikit_learn(y_true, y_pred):
    import warnings

    from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score, f1_score

    from eegdm_utils.core.scoring import classification_metrics, confusion_matrix

    weights = np.arange(1, len(y_true) + 1)
    cm = confusion_matrix(np.array(y_true, float), np.array(y_pred, float), 3, weights=list(weights))
    assert cm.dtype == np.int64
    t, p = np.repeat(y_true, weights), np.repeat(y_pred, weights)
    m = classification_metrics(y_true, y_pred, 3, weights=weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(t, p))
        assert m["kappa"] == pytest.approx(cohen_kappa_score(t, p))
        assert m["weighted_f1"] == pytest.approx(f1_score(t, p, labels=[0, 1, 2], average="weighted", zero_division=0))


def test_kappa_of_one_class_everywhere_is_zero():
    from eegdm_utils.core.scoring import classification_metrics

    m = classification_metrics([1, 1, 1], [1, 1, 1], 3)
    assert m["kappa"] == 0.0 and m["balanced_accuracy"] == 1.0


# --- SSMDP: settings reach the S4D layers, the rate reaches every block, parameter groups --------

def test_ssmdp_blocks_get_the_state_space_settings_and_the_rate():
    from eegdm_utils.models.ssmdp import SSMDP, SSMDPConfig, ssm_parameter_groups

    config = SSMDPConfig(d_model=8, d_state=4, n_layer=2, d_cond=16, d_cond_embed=8, bidirectional=False,
                         dt_min=0.01, dt_max=0.01)
    torch.manual_seed(0)
    model = SSMDP(config)
    for block in model.blocks:
        assert block.s4d.bidirectional is False
        dt = torch.exp(block.s4d.kernel.log_dt)
        torch.testing.assert_close(dt, torch.full_like(dt, 0.01))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        x, t, c = torch.randn(1, 1, 40), torch.tensor([3]), torch.tensor([2])
        assert not torch.allclose(model(x, t, c, rate=1.0), model(x, t, c, rate=2.0))  # the rate reaches the S4D layers
    groups = ssm_parameter_groups(model, 0.05, ssm_lr=1.0e-3)
    assert [g["name"] for g in groups] == ["main", "s4d"] and groups[1]["lr"] == 1.0e-3 and "lr" not in groups[0]
    assert "lr" not in ssm_parameter_groups(model, 0.05)[1]
    assert SSMDP().config == SSMDPConfig()


# --- montage names, LFT weight decay groups, the linear schedule's own betas ---------------------

def test_channel_names_and_derivation_edge_cases():
    from eegdm_utils.data.montage import REF, TCP_NAMES, canonical_electrode, derive_tcp, parse_channel_name

    assert canonical_electrode(" fp 1 ") == "FP1" and canonical_electrode("t7") == "T3"
    assert parse_channel_name("FP1-F7-X") is None  # three parts, the third not MNE's number
    d = parse_channel_name("EEG Fp1-REF")
    assert (d.name, d.positive, d.negative) == ("EEG Fp1-REF", "FP1", REF)
    assert parse_channel_name("FP1-F7").name == "FP1-F7"
    names = ["ECG ECG", "EEG FP1-FP1", "EEG FP1-REF", "EEG F7-REF"]  # unusable channels first
    mapping = derive_tcp(names)
    assert mapping.channel_names == tuple(names)
    k = TCP_NAMES.index("FP1-F7")
    assert mapping.present[k] and mapping.weights[k].tolist() == [0.0, 0.0, 1.0, -1.0]


def test_lft_weight_decay_groups():
    from eegdm_utils.models.lft import LatentFusionTransformer, LFTConfig, no_decay_groups

    model = LatentFusionTransformer(LFTConfig(d_model=8, n_layer=2, n_pool=3, n_tokens=2, n_heads=2, n_final=1,
                                              n_classes=3))
    decay, no_decay = no_decay_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    expected = {n for n, p in model.named_parameters()
                if p.ndim >= 2 and not n.endswith("bias") and n != "fusion_tokens"}
    assert decayed == expected and {"head.weight", "position"} <= decayed
    assert {names[id(p)] for p in no_decay["params"]} == set(names.values()) - expected


def test_linear_schedule_uses_its_own_betas():
    from eegdm_utils.models.diffusion import DiffusionConfig, ddpm_scheduler

    config = DiffusionConfig(beta_schedule="linear", beta_start=1.0e-3, beta_end=2.0e-2, num_train_timesteps=20)
    expected = np.cumprod(1 - np.linspace(1.0e-3, 2.0e-2, 20))
    np.testing.assert_allclose(ddpm_scheduler(config).alphas_cumprod.numpy(), expected, rtol=1e-5)


# --- SSMDP pretraining module: config round trip, the step's generator, optimiser groups ---------

def _small_module(**settings):
    from eegdm_utils.models.ssmdp import SSMDPConfig
    from eegdm_utils.train.pretraining import SSMDPModule

    small = SSMDPConfig(d_model=8, d_state=4, n_layer=2, d_cond=16, d_cond_embed=8)
    return SSMDPModule({"model": small.__dict__, **settings})


def test_pretrain_config_from_dict():
    from eegdm_utils.models.ssmdp import SSMDPConfig
    from eegdm_utils.train.pretraining import PretrainConfig

    assert PretrainConfig.from_dict({}) == PretrainConfig()
    restored = PretrainConfig.from_dict({"model": {"n_layer": 3}, "optim": {"lr": 2.0e-4, "grad_clip": 1.0}})
    assert restored.model == SSMDPConfig(n_layer=3) and restored.optim.lr == 2.0e-4
    assert PretrainConfig.from_dict(asdict(PretrainConfig(ssm_lr=1e-3))) == PretrainConfig(ssm_lr=1e-3)
    with pytest.raises(KeyError, match="unknown pretraining settings"):
        PretrainConfig.from_dict({"learning_rate": 1.0})


def test_training_step_draws_from_the_step_and_rank_generator_and_logs_per_step():
    module = _small_module(seed=2)
    module._trainer = SimpleNamespace(world_size=2, global_rank=1, global_step=3)
    logged = []
    module.log = lambda name, value, **kw: logged.append((name, float(value), kw))
    x0, channel = torch.randn(3, 1, 24, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 5, 9])
    loss = module.training_step((x0, channel), 0)
    g = torch.Generator().manual_seed(2 * 1_000_003 + 3 * 2 + 1)  # step 3 of 2 devices, rank 1
    expected = module.diffusion_loss(module.model, x0, channel, g)
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    assert logged == [("train_loss", pytest.approx(float(expected), rel=1e-6),
                       {"on_step": True, "on_epoch": False, "prog_bar": True})]


def test_diffusion_loss_draws_noise_in_the_signals_dtype():
    from eegdm_utils.models.diffusion import add_noise, velocity

    module = _small_module()
    x0 = torch.randn(2, 1, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    seen = {}

    def model(x, t, c):
        seen["x"] = x
        return torch.zeros_like(x)

    loss = module.diffusion_loss(model, x0, torch.tensor([0, 1]), torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    t = torch.randint(0, 50, (2,), generator=g)
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    torch.testing.assert_close(seen["x"], add_noise(module.scheduler, x0, eps, t))
    torch.testing.assert_close(loss, (velocity(module.scheduler, x0, eps, t) ** 2).mean())


def test_pretraining_optimiser_has_the_learning_rates_asked_for():
    module = _small_module(optim={"lr": 3.0e-4, "weight_decay": 0.01}, ssm_lr=1.0e-3)
    optimizer = module.configure_optimizers()
    assert [g["lr"] for g in optimizer.param_groups] == [3.0e-4, 1.0e-3]
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]
    only_lr = _small_module(optim={"lr": 3.0e-4}).configure_optimizers()
    assert [g["lr"] for g in only_lr.param_groups] == [3.0e-4, 3.0e-4]


def test_classifier_forward_optimiser_schedule_and_loaders():
    from torch.utils.data import TensorDataset

    from eegdm_utils.train.finetuning import ClassifierModule, FinetuneConfig, _Loaders
    from eegdm_utils.train.optim import OptimSettings

    optim = OptimSettings(lr=2.0e-3, betas=(0.8, 0.9), schedule="one_cycle", warmup=0.25)
    config = FinetuneConfig(optim=optim, batch_size=4, seed=5)
    net = _PresentAware()
    module = ClassifierModule(net, config, [{"params": list(net.parameters()), "weight_decay": 0.1}], 3)
    with torch.no_grad():
        module.ema.ema_model.w.add_(1.0)
    x, present = torch.randn(2, 2), torch.ones(2, 2, dtype=torch.bool)
    torch.testing.assert_close(module(x, present), module.ema.ema_model(x, present))  # the EMA weights predict
    module._trainer = SimpleNamespace(estimated_stepping_batches=40)
    setup = module.configure_optimizers()
    optimizer, schedule = setup["optimizer"], setup["lr_scheduler"]
    # (OneCycleLR cycles beta1 as its momentum, 0.85..0.95, so only beta2 stays as configured)
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.param_groups[0]["betas"][1] == 0.9
    assert optimizer.param_groups[0]["weight_decay"] == 0.1 and schedule["interval"] == "step"
    one_cycle = schedule["scheduler"]
    assert isinstance(one_cycle, torch.optim.lr_scheduler.OneCycleLR) and one_cycle.total_steps == 40
    lrs = []
    fresh = ClassifierModule(_PresentAware(), config, [{"params": [torch.nn.Parameter(torch.zeros(1))]}], 3)
    fresh._trainer = SimpleNamespace(estimated_stepping_batches=40)
    setup = fresh.configure_optimizers()
    for _ in range(40):
        lrs.append(setup["lr_scheduler"]["scheduler"].get_last_lr()[0])
        setup["optimizer"].step(), setup["lr_scheduler"]["scheduler"].step()
    assert int(np.argmax(lrs)) == 9 and max(lrs) == pytest.approx(2.0e-3)  # max_lr at step pct_start * 40 - 1
    data = TensorDataset(torch.arange(10.0))
    loaders = _Loaders(data, TensorDataset(torch.arange(300.0)), config)
    loaders.trainer = SimpleNamespace(world_size=1)
    first = [b[0].tolist() for b in loaders.train_dataloader()]
    assert [b[0].tolist() for b in loaders.train_dataloader()] == first  # seeded shuffle
    assert len(first) == 2 and all(len(b) == 4 for b in first)  # 10 examples > batch 4: the last part dropped
    assert sorted(sum(first, [])) != list(range(8))  # shuffled
    small = _Loaders(TensorDataset(torch.arange(3.0)), data, config)
    small.trainer = SimpleNamespace(world_size=1)
    assert [len(b[0]) for b in small.train_dataloader()] == [3]  # fewer than a batch: kept
    val = [b[0] for b in loaders.val_dataloader()]
    assert [len(v) for v in val] == [256, 44] and torch.equal(torch.cat(val), torch.arange(300.0))
