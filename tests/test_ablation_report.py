"""The ablation table (notebook 60, tools/ablations.py): gathering the sweep, the summary, the
comparison with the paper and the figures."""

import numpy as np
import pytest

from eegdm_utils.core.files import atomic_write_json
from sklearn.metrics import cohen_kappa_score

from eegdm_utils.eval.ablation_report import (difference_intervals, gather, paper_agreement, plot_agreement,
                                              plot_table, summary)
from eegdm_utils.eval.ablations import VARIANTS
from eegdm_utils.eval.paper import PAPER_ABLATIONS, PAPER_NAMES, PAPER_RESULTS


def _write(run_dir, variant, seed, kappa, seconds=10.0, predictions=None):
    rows = [{"variant": variant, "table": VARIANTS[variant].table, "seed": seed, "label_fraction": f,
             "kappa": kappa, "balanced_accuracy": kappa / 2, "weighted_f1": kappa, "val_kappa": kappa, "epochs": 3,
             **({} if predictions is None else {"line_predictions": list(map(int, predictions))})}
            for f in (1.0, 0.1)]
    atomic_write_json(run_dir / "ablations" / variant / f"seed_{seed}.json",
                      {"variant": variant, "table": VARIANTS[variant].table, "seed": seed, "rows": rows,
                       "seconds": {"total": seconds}})


def test_gather_and_summary_give_mean_and_population_std_per_variant(tmp_path):
    with pytest.raises(FileNotFoundError, match="make ablations"):
        gather(tmp_path)
    for seed, kappa in enumerate((0.5, 0.7)):
        _write(tmp_path, "full", seed, kappa)
    _write(tmp_path, "no_fusion", 0, 0.4, seconds=120.0)
    results, seconds = gather(tmp_path)
    assert len(results) == 6 and seconds == {"full": 20.0, "no_fusion": 120.0}
    table = summary(results, seconds).set_index(["variant", "labels"])
    assert table.loc[("full", "100%"), "kappa"] == "60.0 ± 10.0"  # population std over two seeds
    assert table.loc[("full", "100%"), "seeds"] == 2
    assert table.loc[("no_fusion", "100%"), "minutes"] == 2.0
    assert table.loc[("no_fusion", "100%"), "paper (100%)"].startswith(f"{PAPER_RESULTS['no_fusion'][0]:.1f}")
    assert table.loc[("no_fusion", "10%"), "paper (100%)"] == ""  # the paper reports all labels only


def test_paper_agreement_measures_changes_from_the_full_model_and_their_order(tmp_path):
    paper_change = {v: PAPER_RESULTS[v][0] - PAPER_RESULTS["full"][0] for v in ("no_fusion", "mean_fusion", "rate_190")}
    for seed in (0, 1):
        _write(tmp_path, "full", seed, 0.60 + 0.02 * seed)  # mean 61, std 1
        for v, change in paper_change.items():  # half the paper's change, same order
            _write(tmp_path, v, seed, 0.61 + change / 200)
    table, rho = paper_agreement(gather(tmp_path)[0])
    table = table.set_index("variant")
    assert rho == pytest.approx(1.0)
    for v, change in paper_change.items():
        assert table.loc[v, "ours"] == pytest.approx(change / 2)
        assert table.loc[v, "paper"] == pytest.approx(change)
        assert table.loc[v, "seed std"] == pytest.approx(1.0)  # the larger of the two rows' seed stds
    for v, change in paper_change.items():  # reversed order
        for seed in (0, 1):
            _write(tmp_path, v, seed, 0.61 - change / 200)
    table, rho = paper_agreement(gather(tmp_path)[0])
    assert rho == pytest.approx(-1.0)
    assert plot_agreement(table, rho, tmp_path / "figures").stat().st_size > 10_000


def test_paper_agreement_needs_the_full_model(tmp_path):
    _write(tmp_path, "no_fusion", 0, 0.4)
    with pytest.raises(ValueError, match="full model"):
        paper_agreement(gather(tmp_path)[0])
    _write(tmp_path, "full", 0, 0.5)
    table, rho = paper_agreement(gather(tmp_path)[0])
    assert list(table["variant"]) == ["no_fusion"] and np.isnan(rho)  # too few variants for an order


def test_plot_table_draws_one_figure_per_paper_table(tmp_path):
    for v, kappa in (("full", 0.6), ("no_fusion", 0.4), ("mean_fusion", 0.5), ("step1", 0.55)):
        _write(tmp_path, v, 0, kappa)
    path = plot_table(gather(tmp_path)[0], VARIANTS["no_fusion"].table, {}, tmp_path / "figures")
    assert path.name.startswith("vi_fusion") and path.stat().st_size > 10_000
    assert not list((tmp_path / "figures").glob("iii*"))  # only the table asked for


def test_every_variant_of_the_paper_has_its_row_and_only_ours_have_none():
    assert {v for v, spec in VARIANTS.items() if not spec.ours} == set(PAPER_NAMES)
    assert set(PAPER_NAMES.values()) - {"EEGDM (paper)"} == set(PAPER_ABLATIONS)  # every row of Tables II-VI, VIII
    assert len(PAPER_ABLATIONS) == 19


def test_difference_intervals_bootstrap_the_change_from_the_full_model_over_test_subjects(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 240)
    subjects = np.repeat([f"s{i}" for i in range(8)], 30)
    atomic_write_json(tmp_path / "controls" / "metrics.json",  # notebook 45's record of the test lines
                      {"test_lines": {"label": labels.tolist(), "subject": subjects.tolist()}})
    full = np.where(rng.random(240) < 0.8, labels, (labels + 1) % 3)  # right on about 80% of the lines
    worse = np.where(rng.random(240) < 0.4, labels, (labels + 1) % 3)
    for seed in (0, 1):
        _write(tmp_path, "full", seed, 0.7, predictions=full)
        _write(tmp_path, "no_fusion", seed, 0.2, predictions=worse)
        _write(tmp_path, "mean_fusion", seed, 0.7, predictions=full)  # the full model's predictions exactly
    _write(tmp_path, "rate_190", 0, 0.5)  # a seed file without predictions: no interval
    table = difference_intervals(tmp_path).set_index(["variant", "label_fraction"])
    assert set(table.index) == {(v, f) for v in ("no_fusion", "mean_fusion") for f in (1.0, 0.1)}
    assert set(difference_intervals(tmp_path, variants={"no_fusion"})["variant"]) == {"no_fusion"}
    expected = 100 * (cohen_kappa_score(labels, worse) - cohen_kappa_score(labels, full))
    row = table.loc[("no_fusion", 1.0)]
    assert row["difference"] == pytest.approx(expected) and row["low"] <= expected <= row["high"]
    assert row["high"] < 0 and row["below"]
    same = table.loc[("mean_fusion", 1.0)]
    assert same["difference"] == same["low"] == same["high"] == 0 and not same["below"]
    agreement = paper_agreement(gather(tmp_path)[0], difference_intervals(tmp_path))[0].set_index("variant")
    assert agreement.loc["no_fusion", "high"] == pytest.approx(row["high"])
    assert np.isnan(agreement.loc["rate_190", "low"])
    summary_table = summary(*gather(tmp_path), difference_intervals(tmp_path)).set_index(["variant", "labels"])
    assert summary_table.loc[("no_fusion", "100%"), "Δ kappa vs full [95% CI]"].startswith(f"{expected:+.1f} [")
    assert summary_table.loc[("rate_190", "100%"), "Δ kappa vs full [95% CI]"] == ""


def test_difference_intervals_need_the_record_of_the_test_lines(tmp_path):
    _write(tmp_path, "full", 0, 0.7, predictions=[0, 1, 2])
    _write(tmp_path, "no_fusion", 0, 0.2, predictions=[0, 0, 0])
    assert difference_intervals(tmp_path).empty  # no controls/metrics.json: no labels, no subjects
    atomic_write_json(tmp_path / "controls" / "metrics.json", {"test_lines": {"label": [0, 1], "subject": ["a", "b"]}})
    with pytest.raises(ValueError, match="not of one store"):
        difference_intervals(tmp_path)


def test_make_ablations_runs_every_variant_once_the_papers_first():
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "Makefile").read_text()
    listed = re.search(r"^ABLATIONS \?=(.*?)\n(?=\S)", text, re.S | re.M).group(1).replace("\\", " ").split()
    assert sorted(listed) == sorted(VARIANTS) and len(listed) == len(set(listed))
    ours = [VARIANTS[v].ours for v in listed]
    assert ours == sorted(ours)  # every paper variant before the first of ours


def test_gathering_again_keeps_the_commit_the_sweep_ran_at_until_a_notebook_is_added(tmp_path, monkeypatch):
    import sys
    from pathlib import Path

    from eegdm_utils.core.files import read_json

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import ablations as tool  # tools/ablations.py

    checkout = {"commit": "aaaa", "dirty": False, "cpu": "cpu", "cores": 2, "started": "then"}
    monkeypatch.setattr(tool, "run_info", lambda *args: dict(checkout))
    _write(tmp_path, "full", 0, 0.6)
    _write(tmp_path, "no_fusion", 0, 0.4)
    info = tmp_path / "ablations" / "sweep_info.json"
    tool.main(tmp_path, tmp_path / "figures")
    assert read_json(info)["commit"] == "aaaa" and read_json(info)["runs"] == 2
    checkout["commit"] = "bbbb"  # another checkout gathers the same notebooks: the sweep's commit stays
    tool.main(tmp_path, tmp_path / "figures")
    assert read_json(info)["commit"] == "aaaa"
    _write(tmp_path, "no_fusion", 1, 0.5)  # a notebook ran here since: this checkout's commit
    tool.main(tmp_path, tmp_path / "figures")
    assert read_json(info)["commit"] == "bbbb" and read_json(info)["runs"] == 3
