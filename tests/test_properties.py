"""Property-based tests (hypothesis) of the round trips and invariants: EDF write -> read, the
staged mu-law, EEGFoundation's tokenizers and masking collator, the montage's channel algebra,
and the store's reuse and atomic overwrite. Settings are modest so that `make test` stays
within its budget; every expected value comes from the definition, not from the code."""

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from eegdm_utils.data.edf import read_edf, read_edf_header, write_edf
from eegdm_utils.data.montage import REF, REFERENTIAL_ELECTRODES, TCP_PAIRS, derive_tcp
from eegdm_utils.data.mulaw import MU, inverse_staged_mu_law, staged_mu_law
from eegdm_utils.foundation.collator import IGNORE, MaskingCollator, mask_tokens
from eegdm_utils.foundation.tokenizer import (CLS_ID, MASK_ID, N_LEVELS, PAD_ID, SEP_ID, SPECIAL_IDS,
                                              AmplitudeTokenizer, MinMaxTokenizer, build_sequences)

FEW = settings(max_examples=25, deadline=None, derandomize=True, database=None,
               suppress_health_check=[HealthCheck.too_slow])
SOME = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


# --- EDF ------------------------------------------------------------------------------------

def _spec_edf(path: Path, digital: np.ndarray, pmin, pmax, dmin, dmax, record_seconds: str, names) -> None:
    """An EDF file written from the specification alone (not with eegdm_utils.data.edf): digital
    [C, n_records, samples] int16, per-signal header values given as the strings to write."""
    C, n_records, ns = digital.shape
    field = lambda text, width: str(text).encode("ascii")[:width].ljust(width)
    header = b"".join([field("0", 8), field("X", 80), field("X", 80), field("01.01.01", 8), field("00.00.00", 8),
                       field(256 * (C + 1), 8), field("", 44), field(n_records, 8), field(record_seconds, 8),
                       field(C, 4)])
    columns = [[field(n, 16) for n in names], [field("", 80)] * C, [field("uV", 8)] * C,
               [field(v, 8) for v in pmin], [field(v, 8) for v in pmax], [field(v, 8) for v in dmin],
               [field(v, 8) for v in dmax], [field("", 80)] * C, [field(ns, 8)] * C, [field("", 32)] * C]
    header += b"".join(b"".join(c) for c in columns)
    path.write_bytes(header + digital.astype("<i2").transpose(1, 0, 2).tobytes())


_physical = st.integers(-50000, 50000).map(lambda v: v / 10)  # at most 8 characters, exact in the header


@st.composite
def _edf_case(draw):
    C = draw(st.integers(1, 4))
    n_records = draw(st.integers(1, 4))
    ns = draw(st.sampled_from([8, 16, 50, 64]))
    record_seconds = draw(st.sampled_from(["1", "0.5", "2", "0.25"]))
    pmin, pmax, dmin, dmax = [], [], [], []
    for _ in range(C):
        a, b = draw(_physical), draw(_physical)
        assume(abs(a - b) >= 1)
        pmin.append(a), pmax.append(b)  # either order: physical min > max is a signal of inverted polarity
        lo = draw(st.integers(-32768, 32000))
        dmin.append(lo), dmax.append(draw(st.integers(lo + 100, 32767)))
    seed = draw(st.integers(0, 2**16))
    return C, n_records, ns, record_seconds, pmin, pmax, dmin, dmax, seed


@FEW
@given(_edf_case())
def test_edf_reader_follows_the_specification_with_either_polarity(case):
    """physical = pmin + (digital - dmin) (pmax - pmin) / (dmax - dmin), for any ranges (physical min
    above max included: the polarity must come out right) and record layouts."""
    C, n_records, ns, record_seconds, pmin, pmax, dmin, dmax, seed = case
    rng = np.random.default_rng(seed)
    digital = np.stack([rng.integers(lo, hi + 1, size=(n_records, ns)) for lo, hi in zip(dmin, dmax)])
    names = [f"EEG {e}-REF" for e in REFERENTIAL_ELECTRODES[:C]]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.edf"
        _spec_edf(path, digital, pmin, pmax, dmin, dmax, record_seconds, names)
        header = read_edf_header(path)
        assert header.n_records == n_records and header.samples_per_record == (ns,) * C
        assert header.sfreqs == pytest.approx((ns / float(record_seconds),) * C)
        raw = read_edf(path)
        got = raw.get_data() * 1e6  # [C, T] uV
    for k in range(C):
        gain = (pmax[k] - pmin[k]) / (dmax[k] - dmin[k])
        expected = pmin[k] + (digital[k].reshape(-1) - dmin[k]) * gain
        np.testing.assert_allclose(got[k], expected, rtol=1e-9, atol=1e-9 * max(abs(pmin[k]), abs(pmax[k])))


@FEW
@given(seconds=st.integers(1, 3), sfreq=st.sampled_from([64, 100, 128, 256]), channels=st.integers(1, 3),
       physical_range=st.floats(0.01, 1.0e5), amplitude=st.floats(0.01, 1.2), seed=st.integers(0, 2**16))
def test_edf_write_then_read_within_half_a_quantisation_step(seconds, sfreq, channels, physical_range, amplitude, seed):
    """write_edf -> read_edf returns the signal within half a quantisation step, sign included
    (an EDF with its physical minimum and maximum swapped reads back with flipped polarity)."""
    rng = np.random.default_rng(seed)
    data = amplitude * physical_range * rng.uniform(-1, 1, size=(channels, sfreq * seconds))
    data[:, 0] = amplitude * physical_range  # the extremes are in every channel
    data[:, 1] = -amplitude * physical_range
    names = [f"EEG {e}-REF" for e in REFERENTIAL_ELECTRODES[:channels]]
    with tempfile.TemporaryDirectory() as tmp:
        write_edf(Path(tmp) / "w.edf", data, sfreq, names, physical_range_uv=physical_range)
        raw = read_edf(Path(tmp) / "w.edf")
        got = raw.get_data() * 1e6
    assert raw.info["sfreq"] == sfreq and raw.ch_names == names
    half_step = physical_range / 65535  # (2 R / 65535) / 2
    expected = np.clip(data, -physical_range, physical_range)
    assert np.abs(got - expected).max() <= half_step * (1 + 1e-6) + 1e-12
    assert np.corrcoef(got[0], data[0])[0, 1] > 0.99


def test_edf_with_swapped_physical_range_reads_back_with_its_polarity(tmp_path):
    """A hand-made case of the specification's inverted polarity: physical min +100, max -100."""
    digital = np.array([[[-32768, 0, 32767, 16384]]])
    _spec_edf(tmp_path / "inv.edf", digital, ["100"], ["-100"], ["-32768"], ["32767"], "1", ["EEG FP1-REF"])
    got = read_edf(tmp_path / "inv.edf").get_data()[0] * 1e6
    np.testing.assert_allclose(got, [100.0, 100 - 200 * 32768 / 65535, -100.0, 100 - 200 * 49152 / 65535], atol=1e-9)


# --- the staged mu-law ------------------------------------------------------------------------

_values = hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=6),
                     elements=st.floats(-1.0e4, 1.0e4, allow_nan=False, allow_subnormal=False))


@SOME
@given(_values)
def test_staged_mu_law_definition_and_exact_inverse(x):
    u = staged_mu_law(x)
    expected = np.array([v if abs(v) <= 1 else math.copysign(math.log(1 + MU * abs(v)) / math.log(1 + MU), v)
                         for v in x.ravel()]).reshape(x.shape)
    np.testing.assert_allclose(u, expected, rtol=1e-12, atol=1e-15)
    assert (np.abs(u) <= np.maximum(np.abs(x), 1)).all()  # never expands
    np.testing.assert_allclose(inverse_staged_mu_law(u), x, rtol=1e-9, atol=1e-12)
    t = torch.from_numpy(x.copy())
    np.testing.assert_allclose(staged_mu_law(t).numpy(), u, rtol=1e-12, atol=1e-15)
    flat = np.sort(x.ravel())
    assert (np.diff(staged_mu_law(flat)) >= 0).all()  # monotone


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_staged_mu_law_is_exact_at_the_stage_boundary_and_keeps_the_backend(backend, dtype):
    edge = np.array([1.0, -1.0, 0.5, 2.0], dtype=dtype)
    x = torch.from_numpy(edge) if backend == "torch" else edge
    u, back = staged_mu_law(x), inverse_staged_mu_law(x)
    assert type(u) is type(x) and type(back) is type(x)
    assert [float(v) for v in u[:3]] == [1.0, -1.0, 0.5] and [float(v) for v in back[:3]] == [1.0, -1.0, 0.5]
    assert float(back[3]) == pytest.approx((256.0 ** 2 - 1) / 255, rel=1e-6)  # ((1 + mu)^u - 1) / mu


# --- EEGFoundation's tokenizers and masking ---------------------------------------------------

_windows = hnp.arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(2, 40)),
                      elements=st.floats(-20, 20, width=32, allow_nan=False, allow_subnormal=False))


@SOME
@given(_windows)
def test_minmax_tokens_round_trip_within_half_a_bin(x):
    tok = MinMaxTokenizer()
    ids = tok.encode(x)
    assert ids.dtype == torch.int64 and ids.shape == x.shape
    assert int(ids.min()) >= 0 and int(ids.max()) < N_LEVELS
    low, high = x.min(-1, keepdims=True), x.max(-1, keepdims=True)
    span = (high - low).astype(np.float64)
    back = tok.decode(ids, torch.from_numpy(low), torch.from_numpy(high)).double().numpy()
    assert (np.abs(back - x) <= span / (N_LEVELS - 1) / 2 * (1 + 1e-4) + 1e-5).all()
    # the window's extremes get the extreme ids (a flat window: all 0)
    flat = (span[:, 0] == 0)
    assert (ids[~torch.from_numpy(flat)].amax(-1) == N_LEVELS - 1).all()
    assert (ids.amin(-1) == 0).all()


@SOME
@given(_windows, st.sampled_from(["uniform", "mulaw"]), st.floats(10.0, 500.0))
def test_amplitude_tokens_round_trip_and_ids_are_fixed_points(x, spacing, range_uv):
    tok = AmplitudeTokenizer(range_uv=range_uv, spacing=spacing)
    ids = tok.encode(x)
    assert int(ids.min()) >= 0 and int(ids.max()) < N_LEVELS
    assert torch.equal(tok.encode(tok.decode(ids)), ids)  # bin centres encode to themselves
    limit = range_uv / 100.0  # store units
    inside = np.abs(x) <= limit
    back = tok.decode(ids).double().numpy()
    if spacing == "uniform":  # bins of 2 R / 1999, so within half of one
        assert (np.abs(back - x)[inside] <= limit / (N_LEVELS - 1) * (1 + 1e-4) + 1e-6).all()
    assert (np.abs(back[~inside]) == pytest.approx(limit, rel=1e-5))  # clipped to the range
    # monotone: a larger value never gets a smaller id
    order = np.argsort(x.ravel(), kind="stable")
    assert (np.diff(ids.reshape(-1)[order].numpy()) >= 0).all()


@SOME
@given(st.integers(1, 3), st.integers(1, 30), st.integers(0, 6), st.integers(0, 2**16))
def test_sequences_special_ids_and_masking(n, L, extra, seed):
    ids = torch.randint(0, N_LEVELS, (n, L), generator=torch.Generator().manual_seed(seed))
    seq, attention = build_sequences(ids, L + 2 + extra)
    assert (seq[:, 0] == CLS_ID).all() and (seq[:, L + 1] == SEP_ID).all() and torch.equal(seq[:, 1:L + 1], ids)
    assert (seq[:, L + 2:] == PAD_ID).all() and torch.equal(attention, (torch.arange(L + 2 + extra) < L + 2).long().expand(n, -1))
    assert set(SPECIAL_IDS) == {2001, 2002, 2003, 2004, 2005} and MASK_ID == 2001
    inputs, labels = mask_tokens(seq, torch.Generator().manual_seed(seed))
    special = seq >= N_LEVELS
    assert torch.equal(inputs[special], seq[special]) and (labels[special] == IGNORE).all()  # never selected
    selected = labels != IGNORE
    assert torch.equal(labels[selected], seq[selected])
    assert torch.equal(inputs[~selected], seq[~selected])  # unselected tokens untouched
    changed = inputs[selected]
    assert ((changed == MASK_ID) | (changed < N_LEVELS)).all()
    again, labels_again = mask_tokens(seq, torch.Generator().manual_seed(seed))
    assert torch.equal(again, inputs) and torch.equal(labels_again, labels)


@FEW
@given(_windows, st.integers(0, 2**16))
def test_collator_masks_the_tokenizers_bare_ids(x, seed):
    collator = MaskingCollator(MinMaxTokenizer())
    batch = collator.mask_batch(torch.from_numpy(x), torch.Generator().manual_seed(seed))
    ids = MinMaxTokenizer().encode(x)
    assert batch["input_ids"].shape == x.shape and (batch["attention_mask"] == 1).all()
    labels, inputs = batch["labels"], batch["input_ids"]
    original = torch.where(labels != IGNORE, labels, inputs)
    assert torch.equal(original, ids)  # every position an amplitude id: no [CLS] or [SEP] in pretraining


# --- the montage's channel algebra -----------------------------------------------------------

_ELECTRODES = list(REFERENTIAL_ELECTRODES)


@st.composite
def _recording_layout(draw):
    """Some referential channels and some bipolar pairs, in any order, as a recording may have them."""
    referential = draw(st.lists(st.sampled_from(_ELECTRODES), unique=True, max_size=8))
    pairs = draw(st.lists(st.tuples(st.sampled_from(_ELECTRODES), st.sampled_from(_ELECTRODES))
                          .filter(lambda p: p[0] != p[1]), max_size=25))
    names = [f"EEG {e}-REF" for e in referential] + [f"{a}-{b}" for a, b in pairs]
    return draw(st.permutations(names)) if names else names


def _connected(names, a, b) -> bool:
    """Union-find over the recorded derivations: can V(a) - V(b) be formed from them?"""
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            x = parent[x]
        return x

    for n in names:
        p, q = (n[4:-4], REF) if n.endswith("-REF") else n.split("-")
        parent[find(p)] = find(q)
    return a in parent and b in parent and find(a) == find(b)


@SOME
@given(_recording_layout(), st.integers(0, 2**16))
def test_derived_tcp_channels_are_exact_differences_or_missing(names, seed):
    mapping = derive_tcp(names)
    rng = np.random.default_rng(seed)
    potential = {e: rng.standard_normal(12) for e in _ELECTRODES + [REF]}
    recorded = np.array([potential[n[4:-4]] - potential[REF] if n.endswith("-REF")
                         else potential[n.split("-")[0]] - potential[n.split("-")[1]] for n in names]).reshape(len(names), 12)
    tcp = mapping.apply(recorded) if names else np.full((22, 12), np.nan)
    for k, (a, b) in enumerate(TCP_PAIRS):
        assert mapping.present[k] == _connected(names, a, b), (a, b)
        if mapping.present[k]:
            np.testing.assert_allclose(tcp[k], potential[a] - potential[b], atol=1e-9)
            assert set(np.unique(mapping.weights[k])) <= {-1.0, 0.0, 1.0}
        else:
            assert np.isnan(tcp[k]).all() and not mapping.weights[k].any()


# --- the store: reuse, and atomic overwrite under random interruption points ------------------

class _Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def two_file_specs(tiny_corpus):
    from eegdm_utils.data.recordings import collect_tuev

    specs = collect_tuev(tiny_corpus)
    return [next(s for s in specs if s.split == "train"), next(s for s in specs if s.split == "test")]


def _snapshot(path: Path) -> dict:
    return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}


@settings(max_examples=12, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(point=st.integers(0, 40), what=st.sampled_from(["save", "json", "write", "replace"]))
def test_store_overwrite_interrupted_anywhere_leaves_the_old_store_whole(two_file_specs, monkeypatch, point, what):
    from eegdm_utils.data import store as store_module
    from eegdm_utils.data.preprocess import PreprocessConfig
    from eegdm_utils.data.simulate import CLASS_NAMES

    config = PreprocessConfig(notch_freq=60.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store"
        old = store_module.build_store(path, two_file_specs, list(CLASS_NAMES), config, {"kind": "old"})
        before = _snapshot(path)
        calls = {"n": 0}

        def interrupting(original):
            def wrapper(*args, **kwargs):
                calls["n"] += 1
                if calls["n"] == point + 1:  # one interruption, at that point
                    raise _Interrupt(f"interrupted at call {calls['n']}")
                return original(*args, **kwargs)
            return wrapper

        with monkeypatch.context() as m:
            if what == "save":
                m.setattr(store_module.np, "save", interrupting(np.save))
            elif what == "json":
                m.setattr(store_module, "atomic_write_json", interrupting(store_module.atomic_write_json))
            elif what == "write":
                m.setattr(store_module, "cut_windows", interrupting(store_module.cut_windows))
            else:  # the renames that put the new store in place of the old one
                m.setattr(store_module.os, "replace", interrupting(store_module.os.replace))
            try:
                new = store_module.build_store(path, two_file_specs, list(CLASS_NAMES), config, {"kind": "new"},
                                               overwrite=True)
                finished = True
            except _Interrupt:
                finished = False
        leftovers = [p.name for p in Path(tmp).iterdir() if p.name != "store"]
        assert leftovers == []  # no temporary folder left behind
        if finished:
            assert new.meta["params"]["source"] == {"kind": "new"}
        else:
            assert _snapshot(path) == before  # the old store, whole and untouched
            assert store_module.EEGStore(path).meta["params"]["source"] == {"kind": "old"}
        # building again with the parameters on disk reuses the store without writing
        meta_before = (path / "meta.json").read_bytes()
        kind = json.loads(meta_before)["params"]["source"]
        with monkeypatch.context() as m:
            m.setattr(store_module, "_build_into", lambda *a, **k: pytest.fail("a store with these parameters was rebuilt"))
            again = store_module.build_store(path, two_file_specs, list(CLASS_NAMES), config, kind)
        assert (path / "meta.json").read_bytes() == meta_before and again.meta == json.loads(meta_before)
        del old
