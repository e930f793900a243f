import numpy as np
import pytest

from eegdm_utils.data.montage import (REF, TCP_NAMES, TUH_CHANNEL_NAMES, bipolar_from_referential, derive_tcp,
                                      parse_channel_name)


@pytest.mark.parametrize("name, positive, negative", [
    ("EEG FP1-REF", "FP1", REF), ("Fp1", "FP1", REF), ("EEG Fp1", "FP1", REF), ("FP1-LE", "FP1", REF),
    ("EEG T7-REF", "T3", REF), ("P7", "T5", REF), ("T8-P8", "T4", "T6"), ("T8-P8-1", "T4", "T6"),
    ("FP1-F7", "FP1", "F7"), ("EEG A2-A1", "A2", "A1"),
])
def test_channel_names(name, positive, negative):
    d = parse_channel_name(name)
    assert (d.positive, d.negative) == (positive, negative)


@pytest.mark.parametrize("name", ["ECG ECG", "PHOTIC PH", "EKG EKG", "-", "EEG REF-FP1"])
def test_non_eeg_channels_are_ignored(name):
    assert parse_channel_name(name) is None


def test_referential_gives_exact_bipolar():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((23, 50))
    mapping = derive_tcp(TUH_CHANNEL_NAMES)
    assert mapping.present.all()
    assert np.allclose(mapping.apply(ref), bipolar_from_referential(ref))


def test_bipolar_recording_maps_and_derives_along_paths():
    # CHB-MIT's double banana, new names, one duplicated label
    names = ["FP1-F7", "F7-T7", "T7-P7", "P7-O1", "FP1-F3", "F3-C3", "C3-P3", "P3-O1", "FP2-F4", "F4-C4",
             "C4-P4", "P4-O2", "FP2-F8", "F8-T8", "T8-P8-0", "P8-O2", "FZ-CZ", "CZ-PZ", "P7-T7", "T7-FT9",
             "FT9-FT10", "FT10-T8", "T8-P8-1"]
    mapping = derive_tcp(names)
    assert mapping.missing == ["A1-T3", "C3-CZ", "C4-CZ", "A2-T4"]
    # electrode potentials -> bipolar channels -> TCP must equal the direct differences
    rng = np.random.default_rng(1)
    electrodes = {e: rng.standard_normal(40) for e in
                  ["FP1", "F7", "T3", "T5", "O1", "F3", "C3", "P3", "FP2", "F4", "C4", "P4", "O2", "F8", "T4",
                   "T6", "FZ", "CZ", "PZ", "FT9", "FT10"]}
    alias = {"T7": "T3", "P7": "T5", "T8": "T4", "P8": "T6"}
    recorded = np.stack([electrodes[alias.get(a, a)] - electrodes[alias.get(b.split("-")[0], b.split("-")[0])]
                         for a, b in (n.split("-", 1) for n in names)])
    tcp = mapping.apply(recorded)
    for k, name in enumerate(TCP_NAMES):
        a, b = name.split("-")
        if mapping.present[k]:
            assert np.allclose(tcp[k], electrodes[a] - electrodes[b]), name
        else:
            assert np.isnan(tcp[k]).all(), name  # missing is NaN, never zeros
    # T3-C3 has no direct channel: it is derived along T7-P7-O1-P3-C3
    assert mapping.present[TCP_NAMES.index("T3-C3")]
