"""Bad input, widened: the EDF, .rec and label-table readers fed truncated, mis-sized and
malformed files made by hypothesis. Every failure is the reader's own error naming the file
and the reason (never another exception); the store is never left half-written; and a split
left empty (or with one class) by skipped files is an error naming them."""

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eegdm_utils.data.edf import EDFError, read_edf, read_edf_header, write_edf
from eegdm_utils.data.preprocess import PreprocessConfig
from eegdm_utils.data.recordings import DataError, collect_edf_folder, collect_tuev, parse_rec, read_label_table
from eegdm_utils.data.simulate import CLASS_NAMES
from eegdm_utils.data.store import EEGStore, build_store

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
CONFIG = PreprocessConfig(notch_freq=60.0)
NAMES = ["EEG FP1-REF", "EEG F7-REF"]


def _valid_edf() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ok.edf"
        write_edf(path, 30 * np.random.default_rng(0).standard_normal((2, 128)), 64, NAMES)
        return path.read_bytes()


VALID = _valid_edf()
HEADER = 256 * 3
# (offset, width) of the numeric header fields: header size, records, duration, signals; then per
# signal (2 signals): physical min/max, digital min/max, samples per record
FIELDS = [(184, 8), (236, 8), (244, 8), (252, 4)] + [
    (256 + 2 * start + 8 * k, 8) for start in (104, 112, 120, 128, 216) for k in range(2)]
_numbers = st.one_of(st.integers(-10**7, 10**7).map(str), st.sampled_from(
    ["", " ", "-1", "0", "nan", "inf", "-inf", "1e9", "0.0", "abc", "\xff\xfe", "3200", "-3200", "2.5"]))


@st.composite
def _broken_edf(draw):
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["field", "bytes", "truncate", "extend"]))
        if kind == "field":
            offset, width = draw(st.sampled_from(FIELDS))
            text = draw(_numbers).encode("latin-1")[:width].ljust(width)
            data[offset:offset + width] = text
        elif kind == "bytes":
            start = draw(st.integers(0, HEADER - 1))
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[start:start + len(chunk)] = chunk
        elif kind == "truncate":
            data = data[:draw(st.integers(0, max(0, len(data) - 1)))]
        else:
            data += draw(st.binary(min_size=1, max_size=300))
    return bytes(data)


def read_or_rejected(content: bytes, name: str, reader, error):
    """``reader(path)`` of ``content`` written as ``name``: its result, or None when it raised ``error``
    with a message naming the file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(content)
        try:
            return reader(path)
        except error as e:
            assert str(path) in str(e) and len(str(e)) > len(str(path)) + 5, str(e)
            return None


@FUZZ
@given(_broken_edf())
def test_malformed_edf_is_read_or_rejected_naming_the_file(content):
    read = read_or_rejected(content, "fuzzed_recording.edf", lambda path: (read_edf(path), read_edf_header(path)),
                            EDFError)
    if read is None:
        return
    raw, header = read
    # the declared records, or more when the file holds more whole records (MNE infers the count
    # from the size, as for a recording whose header was not updated when it stopped)
    whole_records = (len(content) - 256 * (len(header.channel_names) + 1)) // (2 * sum(header.samples_per_record))
    assert raw.n_times == max(header.n_records, whole_records) * header.samples_per_record[0]
    assert np.isfinite(raw.get_data()).all()


def test_edf_with_no_scale_or_empty_records_is_rejected(tmp_path):
    for offset, text, reason in [(256 + 2 * 120, b"32767   ", r"digital range 32767\.\.32767"),
                                 (256 + 2 * 104, b"3200    ", r"physical range 3200\.\.3200"),
                                 (256 + 2 * 216, b"0       ", "0 samples per record"),
                                 (244, b"nan     ", "record duration nan")]:
        data = bytearray(VALID)
        data[offset:offset + len(text)] = text
        (tmp_path / "scale.edf").write_bytes(bytes(data))
        with pytest.raises(EDFError, match=rf"scale\.edf: corrupt EDF header .*{reason}"):
            read_edf(tmp_path / "scale.edf")


def test_write_edf_refuses_a_range_the_header_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match=r"big\.edf: physical range .* 8 characters"):
        write_edf(tmp_path / "big.edf", np.zeros((1, 64)), 64, ["EEG FP1-REF"], physical_range_uv=1.0e9)
    assert not (tmp_path / "big.edf").exists()


# --- .rec files and label tables -------------------------------------------------------------

_rec_line = st.one_of(
    st.tuples(st.integers(-3, 30), st.floats(allow_nan=True), st.floats(allow_nan=True), st.integers(-1, 9))
    .map(lambda t: ",".join(map(str, t))),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
    st.sampled_from(["1,2,3", "1,2,3,4,5", "a,b,c,d", "inf,1,2,3", "1,1,2,inf", ",,,", "1;2;3;4"]))


@FUZZ
@given(st.one_of(st.lists(_rec_line, max_size=6).map(lambda ls: "\n".join(ls).encode("utf-8")),
                 st.binary(max_size=200)))
def test_malformed_rec_is_parsed_or_rejected_naming_the_file(content):
    events = read_or_rejected(content, "fuzzed_events.rec", parse_rec, DataError)
    assert events is None or all(isinstance(e.channel, int) and isinstance(e.label, int) for e in events)


_cell = st.one_of(st.sampled_from(["", "a.edf", "*_1.edf", "rest", "1.5", "nan", "inf", "-2", "x,y", '"q"']),
                  st.text(max_size=8))


@FUZZ
@given(st.one_of(
    st.tuples(st.sampled_from(["file,label", "file,start,end,label", "file,start,label", "name,label", ""]),
              st.lists(st.lists(_cell, max_size=5).map(",".join), max_size=5))
    .map(lambda t: ("\n".join([t[0], *t[1]])).encode("utf-8", "surrogatepass")),
    st.binary(max_size=200)))
def test_malformed_label_table_is_read_or_rejected_naming_the_file(content):
    read = read_or_rejected(content, "fuzzed_labels.csv", read_label_table, DataError)
    if read is None:
        return
    events, whole = read
    for rows in events.values():
        assert all(start < end and label for start, end, label, _ in rows)
    assert all(name and label for name, label in whole.items())


def test_label_table_rows_out_of_order_or_short_are_errors(tmp_path):
    table = tmp_path / "labels.csv"
    table.write_text("file,start,end,label\na.edf,10,5,rest\n")
    with pytest.raises(DataError, match=r"labels\.csv:2: start 10 s is not before end 5 s"):
        read_label_table(table)
    table.write_text("file,start,end,label\na.edf,1\n")
    with pytest.raises(DataError, match=r"labels\.csv:2: empty label"):
        read_label_table(table)
    table.write_bytes(b"file,label\n\xff\xfe,rest\n")
    with pytest.raises(DataError, match=r"labels\.csv: not a text file"):
        read_label_table(table)


# --- the store: never half-written, and no split silently emptied by skipping ----------------

@pytest.fixture(scope="module")
def two_subject_corpus(tiny_corpus, tmp_path_factory):
    """One training and one test recording of the tiny corpus, in a TUEV layout of their own."""
    root = tmp_path_factory.mktemp("two") / "corpus"
    specs = collect_tuev(tiny_corpus)
    for spec in (next(s for s in specs if s.split == "train"), next(s for s in specs if s.split == "test")):
        target = root / spec.path.relative_to(tiny_corpus)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(spec.path, target)
        shutil.copy(spec.path.with_suffix(".rec"), target.with_suffix(".rec"))
    return root


@settings(max_examples=8, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(victim=st.sampled_from(["train", "eval"]), broken=_broken_edf())
def test_a_broken_file_never_leaves_a_half_written_store(two_subject_corpus, victim, broken):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        shutil.copytree(two_subject_corpus, root)
        edf = next((root / "edf" / victim).rglob("*.edf"))
        edf.write_bytes(broken[:256] + edf.read_bytes()[256:] if len(broken) > 3000 else broken)
        for errors in ("raise", "skip"):
            target = Path(tmp) / f"store_{errors}"
            try:
                store = build_store(target, collect_tuev(root), list(CLASS_NAMES), CONFIG, {}, errors=errors)
            except (EDFError, DataError) as e:
                assert edf.name in str(e), str(e)
                assert not target.exists()
            else:
                assert EEGStore(target).meta == store.meta  # whole: every array the metadata names
                if store.meta["skipped_files"]:
                    assert errors == "skip" and edf.name in store.meta["skipped_files"][0]["file"]
            assert [p.name for p in Path(tmp).iterdir() if p.name.startswith(".")] == []  # no temporary folder


def test_a_split_emptied_by_skipped_files_is_an_error_naming_them(tmp_path):
    """Notebook 10 on a folder of two eegmat recordings, one truncated: the truncated file is
    skipped, which leaves the training split empty; that is an error naming the file and why."""
    from conftest import real_data

    folder = tmp_path / "eegmat"
    folder.mkdir()
    for name in ("Subject00_1.edf", "Subject01_2.edf"):
        shutil.copy(real_data("eegmat", name), folder / name)
    (folder / "Subject00_1.edf").write_bytes((folder / "Subject00_1.edf").read_bytes()[:40000])
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\n*_1.edf,rest\n*_2.edf,arithmetic\n")
    specs, classes = collect_edf_folder(folder, labels, test_subjects=["Subject01"])
    config = PreprocessConfig(notch_freq=50.0)
    with pytest.raises(DataError, match=r"the train split is empty .*Subject00_1\.edf: truncated EDF file"):
        build_store(tmp_path / "store", specs, classes, config, {}, errors="skip")
    assert not (tmp_path / "store").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_train_split_left_with_one_class_is_an_error(tmp_path):
    from conftest import real_data

    folder = tmp_path / "eegmat"
    folder.mkdir()
    for name in ("Subject00_1.edf", "Subject00_2.edf", "Subject01_1.edf"):
        shutil.copy(real_data("eegmat", name), folder / name)
    (folder / "Subject00_2.edf").write_bytes((folder / "Subject00_2.edf").read_bytes()[:40000])
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\n*_1.edf,rest\n*_2.edf,arithmetic\n")
    specs, classes = collect_edf_folder(folder, labels, test_subjects=["Subject01"])
    with pytest.raises(DataError, match=r"train split holds only .*rest.*Subject00_2\.edf: truncated"):
        build_store(tmp_path / "store", specs, classes, PreprocessConfig(notch_freq=50.0, val_fraction=0.0), {},
                    errors="skip")


def test_an_old_store_without_training_windows_is_refused_on_reading(tiny_store, tmp_path):
    import json

    copy = tmp_path / "store"
    shutil.copytree(tiny_store.path, copy)
    meta = json.loads((copy / "meta.json").read_text())
    meta["n_faithful"]["train"] = 0
    meta["skipped_files"] = [{"file": "/x/broken.edf", "reason": "/x/broken.edf: truncated EDF file"}]
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"store: the store holds no training windows: /x/broken\.edf: truncated"):
        EEGStore(copy)
