"""The reader on real recordings (CHB-MIT bipolar, PhysioNet eegmat referential).
shipped in data/real/."""

import numpy as np
from conftest import real_data

from eegdm_utils.data.edf import read_edf
from eegdm_utils.data.montage import TCP_NAMES, derive_tcp
from eegdm_utils.data.preprocess import PreprocessConfig, load_tcp
from eegdm_utils.data.recordings import collect_edf_folder
from eegdm_utils.data.store import build_store


def test_chbmit_bipolar_maps_to_tcp():
    f = real_data("chbmit", "chb01_03_Seizure.edf")
    raw = read_edf(f)
    mapping = derive_tcp(raw.ch_names)
    assert mapping.missing == ["A1-T3", "C3-CZ", "C4-CZ", "A2-T4"]
    rec = load_tcp(f, PreprocessConfig(notch_freq=60.0))
    assert rec.source_sfreq == 256 and rec.sfreq == 200
    assert rec.present.sum() == 18
    fp1_f7 = TCP_NAMES.index("FP1-F7")
    expected_uv = raw.copy().pick(["FP1-F7"]).get_data()[0] * 1e6
    # same channel, after filtering and x1e4: similar scale (100 uV units)
    assert 0.2 < np.nanstd(rec.data[fp1_f7]) * 100 / np.std(expected_uv) < 5


def test_eegmat_referential_with_per_file_labels(tmp_path):
    root = real_data("eegmat")
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\n*_1.edf,rest\n*_2.edf,arithmetic\n")
    specs, classes = collect_edf_folder(root, labels, test_subjects=["Subject08", "Subject09"])
    assert classes == ["arithmetic", "rest"]
    specs = [s for s in specs if s.subject in ("Subject00", "Subject01", "Subject02", "Subject08")]
    store = build_store(tmp_path / "store", specs, classes, PreprocessConfig(notch_freq=50.0),
                        {"kind": "eegmat"}, errors="raise")
    meta = store.meta
    assert meta["missing_channels"] == {"A1-T3": len(specs), "A2-T4": len(specs)}
    assert meta["n_faithful"]["test"] > 0 and meta["n_faithful"]["train"] + meta["n_faithful"]["val"] > 0
    present = store.present("train")
    assert present.shape[1] == 22 and present.sum(1).max() == 20
    windows = store.windows("train")
    assert np.isnan(windows[0, TCP_NAMES.index("A1-T3")]).all()
    assert np.isfinite(windows[0, TCP_NAMES.index("FP1-F7")]).all()
