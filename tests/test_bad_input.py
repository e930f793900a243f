"""Every kind of bad input gives an error naming the file and the reason, or a
documented skip counted in the store's metadata."""

import shutil

import mne
import numpy as np
import pytest

from eegdm_utils.data.edf import EDFError, read_edf, read_edf_header, write_edf
from eegdm_utils.data.montage import TUH_CHANNEL_NAMES
from eegdm_utils.data.preprocess import PreprocessConfig, load_tcp, tcp_from_raw
from eegdm_utils.data.recordings import DataError, collect_tuev
from eegdm_utils.data.simulate import CLASS_NAMES
from eegdm_utils.data.store import build_store

CONFIG = PreprocessConfig(notch_freq=60.0)


def _edf(path, n_channels=23, sfreq=256, seconds=10, names=TUH_CHANNEL_NAMES, seed=0):
    data = 20 * np.random.default_rng(seed).standard_normal((n_channels, sfreq * seconds))
    write_edf(path, data, sfreq, list(names)[:n_channels])
    return path


def test_truncated_edf(tmp_path):
    f = _edf(tmp_path / "short.edf")
    f.write_bytes(f.read_bytes()[:-1000])
    with pytest.raises(EDFError, match=r"short\.edf: truncated EDF file"):
        read_edf(f)


def test_corrupt_header(tmp_path):
    f = _edf(tmp_path / "garbage.edf")
    raw = bytearray(f.read_bytes())
    raw[236:244] = b"abcdefgh"  # number of records
    f.write_bytes(bytes(raw))
    with pytest.raises(EDFError, match=r"garbage\.edf: corrupt EDF header \(number of records"):
        read_edf_header(f)
    (tmp_path / "text.edf").write_text("hello")
    with pytest.raises(EDFError, match=r"text\.edf: not an EDF file"):
        read_edf(tmp_path / "text.edf")


def test_edf_without_needed_channels(tmp_path):
    f = _edf(tmp_path / "few.edf", n_channels=6)
    with pytest.raises(DataError, match=r"few\.edf: only \d+ of 22 TCP channels can be derived"):
        load_tcp(f, CONFIG)
    g = _edf(tmp_path / "other.edf", n_channels=2, names=["ECG ECG", "RESP"])
    with pytest.raises(DataError, match=r"other\.edf: no EEG channel maps to the TCP montage"):
        load_tcp(g, CONFIG)


def test_low_sampling_rate(tmp_path):
    f = _edf(tmp_path / "slow.edf", sfreq=128)
    with pytest.raises(DataError, match=r"slow\.edf: sampling rate 128 Hz is under 150 Hz"):
        load_tcp(f, CONFIG)


def _raw(data):
    return mne.io.RawArray(data, mne.create_info(list(TUH_CHANNEL_NAMES), 256, "eeg", verbose="error"), verbose="error")


def test_nan_and_flat_channels_become_missing_and_are_reported():
    data = 1e-5 * np.random.default_rng(0).standard_normal((23, 256 * 10))
    data[0, 100:200] = np.nan  # FP1
    data[5] = 0.0  # C4 flat
    rec = tcp_from_raw(_raw(data), CONFIG, "nanflat.edf")
    assert set(rec.dropped) == {"EEG FP1-REF", "EEG C4-REF"}
    assert "NaN" in rec.dropped["EEG FP1-REF"] and "flat" in rec.dropped["EEG C4-REF"]
    missing = {"FP1-F7", "FP1-F3", "C4-CZ", "T4-C4", "F4-C4", "C4-P4"}
    from eegdm_utils.data.montage import TCP_NAMES
    assert {TCP_NAMES[k] for k in np.flatnonzero(~rec.present)} == missing
    assert np.isnan(rec.data[~rec.present]).all() and np.isfinite(rec.data[rec.present]).all()
    data[:10] = 0.0  # too many flat channels
    with pytest.raises(DataError, match=r"nanflat\.edf: only \d+ of 22 TCP channels .*flat"):
        tcp_from_raw(_raw(data), CONFIG, "nanflat.edf")


@pytest.fixture()
def corpus_copy(tiny_corpus, tmp_path):
    root = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, root)
    return root


@pytest.mark.parametrize("line, reason", [
    ("3,500.0,501.0,2", "lies outside the recording"),
    ("3,5.0,6.0,9", "unknown class 9"),
    ("30,5.0,6.0,2", "channel index 30"),
    ("3,5.0,7.0,2", "lasts 2 s"),
])
def test_bad_rec_lines_raise_or_are_counted(corpus_copy, tmp_path, line, reason):
    rec = sorted(corpus_copy.rglob("*.rec"))[0]
    rec.write_text(rec.read_text() + line + "\n")
    with pytest.raises(DataError, match=rf"{rec.name}:\d+: .*{reason}"):
        build_store(tmp_path / "s1", collect_tuev(corpus_copy), list(CLASS_NAMES), CONFIG, {}, errors="raise")
    assert not (tmp_path / "s1").exists()
    store = build_store(tmp_path / "s2", collect_tuev(corpus_copy), list(CLASS_NAMES), CONFIG, {}, errors="skip")
    assert len(store.meta["skipped_lines"]) == 1 and reason in store.meta["skipped_lines"][0]["reason"]


def test_bad_files_are_counted_when_skipping(corpus_copy, tmp_path):
    victims = sorted(corpus_copy.rglob("*.edf"))
    victims[0].write_bytes(victims[0].read_bytes()[:3000])
    store = build_store(tmp_path / "s", collect_tuev(corpus_copy), list(CLASS_NAMES), CONFIG, {}, errors="skip")
    assert len(store.meta["skipped_files"]) == 1
    assert victims[0].name in store.meta["skipped_files"][0]["file"]
    assert "truncated" in store.meta["skipped_files"][0]["reason"]


def test_missing_rec_file(corpus_copy):
    next(corpus_copy.rglob("*.rec")).unlink()
    with pytest.raises(DataError, match=r"\.edf: no \.rec file beside it"):
        collect_tuev(corpus_copy)
