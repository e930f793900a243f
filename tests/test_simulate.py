import hashlib
from pathlib import Path

import numpy as np
from conftest import TINY

from eegdm_utils.data.edf import read_edf, read_edf_header
from eegdm_utils.data.montage import REFERENTIAL_ELECTRODES, TUH_CHANNEL_NAMES, electrode_positions
from eegdm_utils.data.recordings import parse_rec
from eegdm_utils.data.simulate import CLASS_NAMES, SimulationConfig, make_subjects, simulate_record, write_corpus
from eegdm_utils.data.spectra import psd


def _digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_byte_identical_for_same_seed(tiny_corpus, tmp_path):
    files = sorted(p.relative_to(tiny_corpus) for p in tiny_corpus.rglob("*.edf"))
    assert len(files) == TINY.n_train_subjects + TINY.n_eval_subjects
    assert all(f.parts[0] == "edf" and f.parts[1] in ("train", "eval") and f.parts[2] == f.stem.split("_")[0]
               for f in files)
    assert all((tiny_corpus / f).with_suffix(".rec").exists() for f in files)
    train = {f.parts[2] for f in files if f.parts[1] == "train"}
    test = {f.parts[2] for f in files if f.parts[1] == "eval"}
    assert not train & test
    again = tmp_path / "again"
    write_corpus(again, TINY)
    assert _digest(again) == _digest(tiny_corpus)
    other = tmp_path / "other"
    write_corpus(other, SimulationConfig(**{**TINY.__dict__, "seed": TINY.seed + 1}))
    assert _digest(other) != _digest(tiny_corpus)


def test_edf_is_tuh_like(tiny_corpus):
    edf = next(tiny_corpus.rglob("*.edf"))
    header = read_edf_header(edf)
    assert header.channel_names == TUH_CHANNEL_NAMES
    assert set(header.sfreqs) == {256.0}
    raw = read_edf(edf)
    assert raw.info["sfreq"] == 256 and raw.n_times == TINY.record_seconds * 256
    uv = raw.get_data() * 1e6
    assert 3 < np.median(uv.std(axis=1)) < 80  # EEG-sized amplitudes


def test_rec_lines_are_tuev_format(tiny_corpus):
    recs = list(tiny_corpus.rglob("*.rec"))
    events = [e for r in recs for e in parse_rec(r)]
    assert events
    assert all(0 <= e.channel < 22 and 0 <= e.label < 6 and e.end - e.start == 1.0 for e in events)
    assert all(0 <= e.start and e.end <= TINY.record_seconds for e in events)
    line = recs[0].read_text().splitlines()[0].split(",")
    assert len(line) == 4 and line[1].endswith(".0")


def test_spectrum_alpha_line_noise_and_spatial_correlation():
    config = SimulationConfig(n_train_subjects=3, n_eval_subjects=0, record_seconds=60, seed=3)
    subject = make_subjects(config)[0]
    data, _ = simulate_record(config, subject, 0)  # [23, T] microvolts, referential
    freqs, p = psd(data, 256, nperseg=1024, fmax=None)
    idx = {e: i for i, e in enumerate(REFERENTIAL_ELECTRODES)}
    band = (freqs > subject.alpha_freq - 1) & (freqs < subject.alpha_freq + 1)
    assert p[idx["O1"], band].mean() > 2 * p[idx["FP1"], band].mean()  # posterior-dominant alpha
    line = np.argmin(np.abs(freqs - 60.0))
    assert p[:, line].mean() > 5 * p[:, line - 8: line - 3].mean()  # 60 Hz mains
    low, high = (freqs > 2) & (freqs < 5), (freqs > 20) & (freqs < 30)
    assert p[:, low].mean() > 5 * p[:, high].mean()  # 1/f
    # correlation falls with distance
    pos = electrode_positions()
    assert np.linalg.norm(pos["C3"] - pos["F3"]) < np.linalg.norm(pos["C3"] - pos["O2"])  # near and far indeed
    corr = np.corrcoef(data)
    near = corr[idx["C3"], idx["F3"]]
    far = corr[idx["C3"], idx["O2"]]
    assert near > far


def test_class_imbalance_like_tuev():
    config = SimulationConfig(n_train_subjects=12, n_eval_subjects=0, record_seconds=120, seed=5)
    counts = np.zeros(6, int)
    for subject in make_subjects(config):
        _, lines = simulate_record(config, subject, 0)
        for line in lines:
            counts[line[3] - 1] += 1
    share = dict(zip(CLASS_NAMES, counts / counts.sum()))
    assert share["BCKG"] == max(share.values())
    assert share["ARTF"] > share["SPSW"] and share["BCKG"] > 0.3
    assert share["SPSW"] == min(share.values()) or share["SPSW"] < 0.06
    assert all(v > 0 for v in share.values())


def test_annotation_channels_follow_threshold_and_cap():
    """An event is annotated on the TCP channels where its own bipolar RMS reaches the class
    threshold relative to the strongest channel, at most `cap` of them, ties to the lower index."""
    from eegdm_utils.data import simulate as S

    sfreq, E = 256, len(REFERENTIAL_ELECTRODES)
    a, b = S._BIPOLAR_A, S._BIPOLAR_B
    # A field that rises along the electrode list gives each bipolar pair a known RMS.
    field = np.linspace(0.0, 1.0, E) ** 2
    wave = np.sin(2 * np.pi * 3 * np.arange(2 * sfreq) / sfreq)
    rms = np.abs(field[a] - field[b]) / np.sqrt(2)
    ratio = np.round(rms / rms.max(), 6)  # the rule compares ratios rounded to 1e-6
    rng = np.random.default_rng(0)
    for label in (S.SPSW, S.GPED, S.PLED, S.EYEM, S.ARTF):
        threshold, cap = S._ANNOTATION_RULE[label]
        event = S.Event(label, 0, field[:, None] * wave[None], [0, 1])
        chosen = S.annotation_channels(rng, event, 1, sfreq)
        expected = sorted(sorted(np.flatnonzero(ratio >= threshold), key=lambda k: (-ratio[k], k))[:cap])
        assert chosen == [int(k) for k in expected], S.CLASS_NAMES[label]
        assert 1 <= len(chosen) <= cap
    # Two channels with the same strength: the lower TCP index wins the last place.
    field2 = np.zeros(E)
    k1, k2 = 0, 4  # FP1-F7 and FP2-F8 share no electrode
    field2[a[k1]], field2[a[k2]] = 1.0, 1.0
    event = S.Event(S.EYEM, 0, field2[:, None] * wave[None], [0])
    assert S.annotation_channels(rng, event, 0, sfreq)[:1] == [k1]
    silent = S.Event(S.SPSW, 0, np.zeros((E, 2 * sfreq)), [0])
    assert S.annotation_channels(rng, silent, 0, sfreq) == []
