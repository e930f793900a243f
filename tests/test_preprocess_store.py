import hashlib

import mne
import numpy as np
import pytest

from eegdm_utils.data.datasets import FaithfulDataset, PretrainDataset
from eegdm_utils.data.montage import TUH_CHANNEL_NAMES
from eegdm_utils.data.preprocess import PreprocessConfig, cut_windows, tcp_from_raw
from eegdm_utils.data.recordings import RecordingSpec, collect_tuev
from eegdm_utils.data.simulate import CLASS_NAMES
from eegdm_utils.data.store import EEGStore, StoreMismatch, build_store


def _raw(data_v, sfreq, names=TUH_CHANNEL_NAMES):
    return mne.io.RawArray(data_v, mne.create_info(list(names), sfreq, "eeg", verbose="error"), verbose="error")


def test_pipeline_scales_filters_and_resamples():
    fs, seconds = 256, 20
    t = np.arange(fs * seconds) / fs
    data = 1e-7 * np.random.default_rng(0).standard_normal((23, len(t)))  # 0.1 uV: not flat
    data[0] += 50e-6 * np.sin(2 * np.pi * 10 * t) + 20e-6 * np.sin(2 * np.pi * 60 * t)  # FP1: alpha + mains
    rec = tcp_from_raw(_raw(data, fs), PreprocessConfig(notch_freq=60.0))
    assert rec.sfreq == 200 and rec.data.shape == (22, 200 * seconds)
    fp1_f7 = rec.data[0, 400:-400]  # FP1-F7 = FP1 (F7 is zero); x1e4: 50 uV -> 0.5
    assert abs(np.abs(np.fft.rfft(fp1_f7)).max() * 2 / len(fp1_f7) - 0.5) < 0.02
    spectrum = np.abs(np.fft.rfft(fp1_f7))
    freqs = np.fft.rfftfreq(len(fp1_f7), 1 / 200)
    assert spectrum[np.argmin(np.abs(freqs - 60))] < 0.01 * spectrum.max()  # notch removed the mains


def test_windows_follow_the_reference_indexing():
    config = PreprocessConfig(notch_freq=60.0)
    fs, seconds = 256, 30
    rng = np.random.default_rng(0)
    rec = tcp_from_raw(_raw(rng.standard_normal((23, fs * seconds)) * 1e-5, fs), config)
    windows = cut_windows(rec, [(10.0, 11.0), (0.0, 1.0), (29.0, 30.0)], config)
    assert windows.shape == (3, 22, 1000)
    n = rec.data.shape[1]
    assert np.array_equal(windows[0], rec.data[:, 1600:2600])  # [start - 2 s, end + 2 s]
    # edges wrap around, because the reference tiles the signal 3 times
    assert np.array_equal(windows[1][:, :400], rec.data[:, n - 400:])
    assert np.array_equal(windows[2][:, 600:], rec.data[:, :400])


def test_store_contents_and_splits(tiny_store, tiny_corpus):
    specs = collect_tuev(tiny_corpus)
    meta = tiny_store.meta
    n_lines = {"train": 0, "val": 0, "test": 0}
    for s in specs:
        split = "test" if s.split == "test" else ("val" if s.subject in meta["val_subjects"] else "train")
        n_lines[split] += len(s.events)
    assert meta["n_faithful"] == n_lines
    assert len(meta["val_subjects"]) == int(5 * 0.2) == 1
    assert set(meta["subjects"]["test"]) == {s.subject for s in specs if s.split == "test"}
    for split in ("train", "val", "test"):
        windows = tiny_store.windows(split)
        assert windows.shape[1:] == (22, 1000) and windows.dtype == np.float32
        assert sum(tiny_store.class_counts(split).values()) == meta["n_faithful"][split]
        assert meta["n_pretrain"][split] == tiny_store.present(split).sum()
    ds = FaithfulDataset(tiny_store, "train", merge=False)
    x, present, label, weight = ds[0]
    assert x.shape == (22, 1000) and 0 <= label < 6 and 0 <= ds.channels[0] < 22 and present.all() and weight == 1
    merged = FaithfulDataset(tiny_store, "train")
    assert len(merged) < len(ds) and merged.n_lines == len(ds) == meta["n_faithful"]["train"]
    pre = PretrainDataset(tiny_store, "train")
    assert len(pre) == meta["n_pretrain"]["train"]
    xp, k = pre[5]
    assert xp.shape == (1, 1000)
    # the faithful lines keep the order and labels of the .rec files
    train_specs = [s for s in specs if s.split == "train" and s.subject not in meta["val_subjects"]]
    assert ds.labels.tolist() == [e.label for s in train_specs for e in s.events]


def test_store_reuse_mismatch_and_atomic_overwrite(tiny_corpus, tmp_path):
    specs = collect_tuev(tiny_corpus)
    path = tmp_path / "store"
    config = PreprocessConfig(notch_freq=60.0)
    build_store(path, specs, list(CLASS_NAMES), config, {"kind": "test"})
    digest = {p.name + p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in path.rglob("*") if p.is_file()}
    mtime = (path / "meta.json").stat().st_mtime_ns
    build_store(path, specs, list(CLASS_NAMES), config, {"kind": "test"})  # same parameters: reused
    assert (path / "meta.json").stat().st_mtime_ns == mtime
    with pytest.raises(StoreMismatch, match="preprocess.notch_freq"):
        build_store(path, specs, list(CLASS_NAMES), PreprocessConfig(notch_freq=50.0), {"kind": "test"})
    # a failing rebuild (a truncated file) leaves the existing store untouched
    broken = tmp_path / "broken"
    import shutil
    shutil.copytree(tiny_corpus, broken)
    victim = next(broken.rglob("*.edf"))
    victim.write_bytes(victim.read_bytes()[:-5000])
    with pytest.raises(ValueError, match="truncated"):
        build_store(path, collect_tuev(broken), list(CLASS_NAMES), PreprocessConfig(notch_freq=50.0),
                    {"kind": "test"}, overwrite=True)
    after = {p.name + p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in path.rglob("*") if p.is_file()}
    assert after == digest
    assert not list(tmp_path.glob(".store.*"))  # no temporary folder left behind
    EEGStore(path)  # still readable


def test_notebook_10_checks_pass_for_timed_and_whole_file_labels(tiny_store, tiny_corpus, tmp_path):
    from eegdm_utils.data.recordings import DataError, collect_edf_folder
    from eegdm_utils.data.store import check_store

    specs = collect_tuev(tiny_corpus)
    check_store(tiny_store, specs)  # timed labels (.rec lines): every line accounted for
    extra = [RecordingSpec(s.path, s.split, s.subject, list(s.events), s.label_source, s.whole_file_label)
             for s in specs]
    extra[0].events.append(extra[0].events[0])  # a line the store never saw
    with pytest.raises(DataError, match="annotation lines in the label files"):
        check_store(tiny_store, extra)
    # whole-file labels (file,label): no annotation lines, windows tiled over each file
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\n*.edf,background\n")
    whole, classes = collect_edf_folder(tiny_corpus / "edf", labels, test_fraction=0.4)
    assert all(s.whole_file_label is not None and not s.events for s in whole)
    store = build_store(tmp_path / "whole", whole, classes, PreprocessConfig(notch_freq=60.0), {"kind": "test"})
    assert store.meta["n_whole_file_lines"] == sum(store.meta["n_faithful"].values()) > 0
    check_store(store, whole)


def test_a_corpus_too_small_for_a_validation_split_is_an_error_at_notebook_10(tiny_corpus, tmp_path):
    from eegdm_utils.data.recordings import DataError
    from eegdm_utils.data.store import check_store

    specs = collect_tuev(tiny_corpus)
    two = sorted({s.subject for s in specs if s.split == "train"})[:2]  # 2 x 0.2 rounds down to no subject
    small = [s for s in specs if s.split != "train" or s.subject in two]
    store = build_store(tmp_path / "small", small, list(CLASS_NAMES), PreprocessConfig(notch_freq=60.0), {"kind": "test"})
    with pytest.raises(DataError, match="no validation window: 2 training subject.* at least 5 training subjects"):
        check_store(store, small)


def test_validation_subjects_are_the_references_pick():
    """20 training subjects (and a test subject that must stay put): the reference's procedure,
    np.random.seed(4523) then choice without replacement over the sorted subjects, picks these 4.
    A changed seed, fraction or order picks others."""
    from pathlib import Path

    from eegdm_utils.data.recordings import assign_validation

    specs = [RecordingSpec(Path(f"aaaa{i:04d}_s001_t000.edf"), "train", f"aaaa{i:04d}") for i in range(20)]
    specs.append(RecordingSpec(Path("bbbb0000_s001_t000.edf"), "test", "bbbb0000"))
    val = assign_validation(specs)
    assert val == ["aaaa0009", "aaaa0010", "aaaa0011", "aaaa0014"]  # pinned
    subjects = [f"aaaa{i:04d}" for i in range(20)]
    assert val == sorted(np.random.RandomState(4523).choice(subjects, size=4, replace=False).tolist())
    assert [s.subject for s in specs if s.split == "val"] == val and specs[-1].split == "test"
