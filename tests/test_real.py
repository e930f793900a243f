"""Real-EEG protocol: subject-wise folds, the CHB-MIT labels builder, task metrics, and the
errors a real folder can raise."""

import csv

import numpy as np
import pytest
from conftest import real_data

from eegdm_utils.data.edf import write_edf
from eegdm_utils.data.real_folders import chbmit_labels, fold_specs, parse_chbmit_summary, subject_folds
from eegdm_utils.data.recordings import DataError, collect_edf_folder
from eegdm_utils.eval.real_eeg import best_class_weighting, route_claims, task_metrics

SUMMARY = """Data Sampling Rate: 256 Hz
*************************

Channels in EDF Files:
**********************
Channel 1: FP1-F7
Channel 2: F7-T7

File Name: chb99_01.edf
File Start Time: 11:42:54
File End Time: 12:42:54
Number of Seizures in File: 0

File Name: chb99_02.edf
File Start Time: 13:43:04
File End Time: 14:43:04
Number of Seizures in File: 2
Seizure 1 Start Time: 100 seconds
Seizure 1 End Time: 130 seconds
Seizure 2 Start Time: 400 seconds
Seizure 2 End Time: 410 seconds

File Name: chb99_03.edf
File Start Time: 14:43:12
File End Time: 15:43:12
Number of Seizures in File: 1
Seizure Start Time: 50 seconds
Seizure End Time: 70 seconds
"""


def _patient(root, seconds=600, summary=SUMMARY):
    folder = root / "chb99"
    folder.mkdir(parents=True)
    (folder / "chb99-summary.txt").write_text(summary)
    data = np.random.default_rng(0).normal(0, 20, (2, 256 * seconds))
    for i in (1, 2, 3):
        write_edf(folder / f"chb99_0{i}.edf", data, 256, ["FP1-F7", "F7-T7"])
    return folder


def test_subject_folds_test_every_subject_once():
    subjects = [f"S{i:02d}" for i in range(10)]
    folds = subject_folds(subjects + subjects[:3], 5, seed=1)  # duplicates count once
    assert len(folds) == 5 and all(len(f) == 2 for f in folds)
    assert sorted(s for f in folds for s in f) == subjects
    assert subject_folds(subjects, 5, seed=1) == folds  # seeded
    assert sorted(len(f) for f in subject_folds(subjects[:7], 3)) == [2, 2, 3]
    with pytest.raises(ValueError, match="3 subjects"):
        subject_folds(subjects[:3], 4)


def test_fold_specs_keep_test_subjects_out_of_training():
    specs, _ = collect_edf_folder(real_data("eegmat"), real_data("eegmat", "labels.csv"), test_subjects=[])
    assert {s.split for s in specs} == {"train"}
    fold = fold_specs(specs, ["Subject03", "Subject07"])
    assert {s.subject for s in fold if s.split == "test"} == {"Subject03", "Subject07"}
    assert not {s.subject for s in fold if s.split != "test"} & {"Subject03", "Subject07"}
    assert all(s.split == "train" for s in specs)  # the originals are untouched
    with pytest.raises(DataError, match=r"Subject42"):
        fold_specs(specs, ["Subject42"])


def test_shipped_label_tables_cover_every_shipped_file():
    specs, classes = collect_edf_folder(real_data("eegmat"), real_data("eegmat", "labels.csv"))
    assert classes == ["arithmetic", "rest"] and len(specs) == 20
    assert len({s.subject for s in specs}) == 10
    specs, classes = collect_edf_folder(real_data("chbmit"), real_data("chbmit", "labels.csv"))
    assert classes == ["non-seizure", "seizure"] and len(specs) == 2


def test_label_table_naming_missing_files_is_an_error(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\n*_1.edf,rest\nSubject77_2.edf,arithmetic\n")
    with pytest.raises(DataError, match=r"labels\.csv: names files that are not in .*Subject77_2\.edf"):
        collect_edf_folder(real_data("eegmat"), labels)


def test_chbmit_summary_both_spellings(tmp_path):
    path = tmp_path / "chb99-summary.txt"
    path.write_text(SUMMARY)
    assert parse_chbmit_summary(path) == {"chb99_01.edf": [], "chb99_02.edf": [(100.0, 130.0), (400.0, 410.0)],
                                          "chb99_03.edf": [(50.0, 70.0)]}
    path.write_text("File Name: a.edf\nSeizure Start Time: 30 seconds\nSeizure End Time: 20 seconds\n")
    with pytest.raises(DataError, match=r"chb99-summary\.txt:3: seizure ends at 20 s"):
        parse_chbmit_summary(path)
    path.write_text("nothing here\n")
    with pytest.raises(DataError, match="not a CHB-MIT summary"):
        parse_chbmit_summary(path)


def test_chbmit_labels_builder(tmp_path):
    root = tmp_path / "chbmit"
    _patient(root)
    out = tmp_path / "labels.csv"
    counts = chbmit_labels(root, out, margin_seconds=30, seed=0)
    assert counts == {"chb99": {"seizure_seconds": 60.0, "non_seizure_seconds": 60.0, "files": 3}}
    rows = list(csv.DictReader(open(out)))
    seizures = {(r["file"], float(r["start"]), float(r["end"])) for r in rows if r["label"] == "seizure"}
    assert seizures == {("chb99/chb99_02.edf", 100, 130), ("chb99/chb99_02.edf", 400, 410), ("chb99/chb99_03.edf", 50, 70)}
    spans = {"chb99/chb99_02.edf": [(100, 130), (400, 410)], "chb99/chb99_03.edf": [(50, 70)]}
    for r in rows:
        if r["label"] == "non-seizure":
            s, e = float(r["start"]), float(r["end"])
            assert 0 <= s < e <= 600
            assert all(e <= a - 30 or s >= b + 30 for a, b in spans.get(r["file"], []))
    # the table is what notebook 10 reads: 1-s events, one subject
    specs, classes = collect_edf_folder(root, out, test_subjects=[])
    assert classes == ["non-seizure", "seizure"] and {s.subject for s in specs} == {"chb99"}
    assert sum(len(s.events) for s in specs) == 120


def test_chbmit_labels_names_the_missing_file(tmp_path):
    root = tmp_path / "chbmit"
    folder = _patient(root)
    (folder / "chb99_03.edf").unlink()
    out = tmp_path / "labels.csv"
    out.write_text("kept\n")
    with pytest.raises(DataError, match=r"chb99-summary\.txt: lists chb99_03\.edf, which is not in"):
        chbmit_labels(root, out)
    assert out.read_text() == "kept\n"  # nothing half-written


def test_task_metrics_binary_and_collapse():
    y = np.array([0, 0, 1, 1])
    m = task_metrics(y, np.array([[2.0, 1.0], [0.0, 1.0], [0.0, 3.0], [1.0, 0.5]]), 2)
    assert m["balanced_accuracy"] == 0.5 and m["auroc"] == 0.75 and m["predicted_classes"] == 2
    collapsed = task_metrics(y, np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0], [0.0, 4.0]]), 2)
    assert collapsed["predicted_classes"] == 1 and collapsed["kappa"] == 0.0 and collapsed["auroc"] == 1.0
    assert np.isnan(task_metrics(np.array([1, 1]), np.array([[0.0, 1.0], [1.0, 0.0]]), 2)["auroc"])


def test_test_subjects_only_for_edf_folders(tmp_path):
    from eegdm_utils.data.dataprep import recordings

    with pytest.raises(DataError, match=r"test_subjects \['S1'\] apply to an EDF folder"):
        recordings("", sim_dir=tmp_path, test_subjects=["S1"])
    specs, classes, source = recordings(real_data("eegmat"), real_data("eegmat", "labels.csv"),
                                        test_subjects=["Subject02"])
    assert {s.subject for s in specs if s.split == "test"} == {"Subject02"} and source["kind"] == "EDF folder"
    with pytest.raises(DataError, match=r"eegmat: test subjects \['Subject42'\] have no labelled recordings"):
        recordings(real_data("eegmat"), real_data("eegmat", "labels.csv"), test_subjects=["Subject42"])


def test_subject_split_and_fold_view(tmp_path):
    from eegdm_utils.data.preprocess import PreprocessConfig
    from eegdm_utils.data.real_folders import FoldView, subject_split, window_subjects
    from eegdm_utils.data.store import build_store

    specs, classes = collect_edf_folder(real_data("eegmat"), real_data("eegmat", "labels.csv"), test_subjects=[])
    specs = [s for s in specs if s.subject in ("Subject00", "Subject01", "Subject02", "Subject03")]
    store = build_store(tmp_path / "store", specs, classes, PreprocessConfig(notch_freq=50.0, val_fraction=0.0),
                        {"kind": "eegmat"}, errors="raise")
    assert store.meta["shapes"]["val"][0] == store.meta["shapes"]["test"][0] == 0  # one split holds every window
    subjects = window_subjects(store)
    splits = subject_split(subjects, ["Subject02"], seed=0)
    assert {s: set(subjects[i]) for s, i in splits.items() if s != "train"} == {"test": {"Subject02"},
                                                                               "val": set(subjects[splits["val"]])}
    assert len(set(subjects[splits["val"]])) == 1 and not set(subjects[splits["train"]]) & {"Subject02"}
    view = FoldView(store, splits)
    for split, idx in splits.items():
        assert np.array_equal(view.windows(split), store.windows("train")[np.sort(idx)], equal_nan=True)
        lines = view.faithful(split)
        assert len(lines["label"]) == view.meta["n_faithful"][split] == len(idx)  # whole-file tiles: one line each
        assert (lines["window"] < len(idx)).all()
    # labels follow their windows: every window of Subject02_2 (arithmetic) keeps its label
    assert sorted(set(view.faithful("test")["label"].tolist())) == [0, 1]
    with pytest.raises(DataError, match="Subject42"):
        subject_split(subjects, ["Subject42"])


def test_time_split_shares_no_sample_between_any_two_splits():
    from eegdm_utils.data.real_folders import time_split

    sfreq, seconds = 200, 5.0
    window_file = np.repeat([0, 1], 40)
    window_start = np.tile(np.arange(40.0), 2)  # 1-s steps: 5-s windows overlap their neighbours

    def samples(indices):  # the (file, sample) pairs a split's windows cover
        return {(int(window_file[i]), int(window_start[i] * sfreq) + n) for i in indices for n in range(int(seconds * sfreq))}

    seen = np.zeros(80, dtype=int)
    for fold in range(4):
        s = time_split(window_file, window_start, 4, fold, window_seconds=seconds)
        seen[s["test"]] += 1
        covered = {name: samples(s[name]) for name in ("train", "val", "test")}
        assert not covered["val"] & covered["test"], fold  # the validation block next to the test block: a guard
        assert not covered["train"] & (covered["val"] | covered["test"]), fold
        assert len(s["train"]) > 0 and len(s["val"]) > 0
    assert (seen == 1).all()  # every window tested once


def test_the_real_data_path_does_not_import_the_simulator():
    import subprocess
    import sys

    code = ("import sys, eegdm_utils.eval.real_eeg, eegdm_utils.data.recordings, eegdm_utils.data.store, eegdm_utils.data.edf; "
            "print('eegdm_utils.data.simulate' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_best_class_weighting_keeps_the_fit_with_the_better_validation_kappa():
    labels = np.array([0, 0, 0, 1])  # unequal classes: both weightings are fitted
    fits = {"none": (0.2, np.array([[1.0, 0.0]])), "balanced": (0.5, np.array([[0.0, 1.0]]))}
    scores, info = best_class_weighting(lambda w: fits[w], labels, ["none", "balanced"], 2)
    assert info == {"class_weight": "balanced", "val_kappa": 0.5}
    assert scores.tolist() == [[0.0, 1.0]]


def test_best_class_weighting_fits_once_when_the_classes_are_balanced():
    calls = []
    best_class_weighting(lambda w: calls.append(w) or (0.0, np.zeros((1, 2))), np.array([0, 1, 0, 1]),
                         ["none", "balanced"], 2)
    assert calls == ["none"]


def test_best_class_weighting_seeds_every_fit_so_that_it_does_not_depend_on_what_ran_before():
    import torch

    def draw(w):
        return 0.0, torch.rand(3).numpy()[None]

    torch.manual_seed(123)
    first = best_class_weighting(draw, np.array([0, 0, 1]), ["none"], 2, seed=7)[0]
    torch.rand(100)  # another fit ran in between
    second = best_class_weighting(draw, np.array([0, 0, 1]), ["none"], 2, seed=7)[0]
    torch.manual_seed(7)
    assert np.array_equal(first, second) and np.array_equal(first, torch.rand(3).numpy()[None])
    unseeded = best_class_weighting(draw, np.array([0, 0, 1]), ["none"], 2)[0]
    assert not np.array_equal(first, unseeded)


def _fold_rows(route, predictions_by_fold, labels_by_fold, subjects_by_fold):
    return [{"fold": f, "route": route, "line_predictions": list(p), "line_labels": list(y), "line_subjects": list(s)}
            for f, (p, y, s) in enumerate(zip(predictions_by_fold, labels_by_fold, subjects_by_fold))]


def test_real_eeg_claims_pool_the_folds_and_hold_only_beyond_the_subject_interval():
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(0)
    subjects = [np.repeat([f"s{2 * f}", f"s{2 * f + 1}"], 20) for f in range(3)]  # 6 subjects, each tested once
    labels = [rng.integers(0, 2, 40) for _ in range(3)]
    right = labels  # the transfer route: right everywhere
    coin = [rng.integers(0, 2, 40) for _ in range(3)]
    rows = (_fold_rows("transfer", right, labels, subjects) + _fold_rows("band_power", coin, labels, subjects)
            + _fold_rows("untrained", right, labels, subjects))
    claims = {c["claim"]: c for c in route_claims(rows, 2, n_boot=300)}
    beat = claims["EEGDM, transfer above band powers + logistic regression (balanced accuracy)"]
    pooled_y, pooled_coin = np.concatenate(labels), np.concatenate(coin)
    assert beat["difference"] == pytest.approx(100 * (1 - balanced_accuracy_score(pooled_y, pooled_coin)))
    assert beat["holds"] is True and beat["n_subjects"] == 6
    tie = claims["EEGDM, transfer above EEGDM, untrained backbone (balanced accuracy)"]
    assert tie["difference"] == tie["low"] == tie["high"] == 0 and tie["holds"] is False
    assert not any("self-supervised" in c for c in claims)  # the route did not run: no claim
    old = [{k: v for k, v in r.items() if not k.startswith("line_")} for r in rows]  # a run before line predictions
    assert all(c["holds"] == "not assessed" for c in route_claims(old, 2))
    one_patient = [{**r, "line_subjects": ["chb01"] * 40} for r in rows]  # time blocks of one patient
    assert all(c["holds"] == "not assessed" for c in route_claims(one_patient, 2))


def test_a_fold_row_keeps_each_line_and_the_accuracy_of_each_subject():
    from eegdm_utils.eval.real_eeg import ROUTES, fold_route_row

    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]])  # predicts 0 1 0 1 1
    labels, subjects = np.array([0, 1, 1, 1, 0]), np.array(["a", "a", "b", "b", "b"])
    row, per_subject = fold_route_row(2, "band_power", {"C": 1.0}, {"kappa": 0.1}, 3.14159, labels, scores, subjects)
    assert row["method"] == ROUTES["band_power"] and row["C"] == 1.0 and row["seconds"] == 3.1
    assert row["line_predictions"] == [0, 1, 0, 1, 1] and row["line_subjects"] == list(subjects)
    assert {s["subject"]: (s["n"], s["accuracy"]) for s in per_subject} == {"a": (2, 1.0), "b": (3, pytest.approx(1 / 3))}
