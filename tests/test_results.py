"""tools/results.py: RESULTS.md is rendered from a run's metrics, never typed. The expected numbers are
computed here from the fixture's metrics files (a smoke run of `tools/run.py --plan run`, metrics only),
not taken from the renderer."""

import json
import os
import shutil
import sys
from datetime import datetime, timezone

import numpy as np
import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
import results  # noqa: E402

FIXTURE = REPO / "tests" / "fixtures" / "run"


@pytest.fixture(scope="module")
def rendered() -> tuple[dict, str]:
    collected = results.collect(FIXTURE)
    return collected, results.render(collected, "figures")


def row(text: str, *cells: str) -> bool:
    return f"| {' | '.join(cells)} |" in text


def test_every_network_row_is_the_mean_and_population_std_of_its_seeds(rendered):
    _, text = rendered
    seeds = [json.loads(p.read_text()) for p in sorted((FIXTURE / "lft").glob("seed_*/metrics.json"))]
    assert len(seeds) >= 2
    for r0 in seeds[0]["results"]:
        runs = [next(r for r in s["results"] if (r["method"], r["label_fraction"]) == (r0["method"], r0["label_fraction"]))
                for s in seeds]
        cells = []
        for metric in ("kappa", "balanced_accuracy", "weighted_f1"):
            values = [100 * r[metric] for r in runs]
            mean = sum(values) / len(values)
            std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
            cells.append(f"{mean:.2f} ± {std:.2f}")
        assert row(text, r0["method"], f"{r0['label_fraction']:.0%}", str(len(seeds)), *cells), (r0["method"], cells)


def test_every_readout_row_is_its_single_fit(rendered):
    _, text = rendered
    for r in json.loads((FIXTURE / "controls" / "metrics.json").read_text())["results"]:
        cells = [f"{100 * r[m]:.2f}" for m in ("kappa", "balanced_accuracy", "weighted_f1")]
        assert row(text, r["method"], f"{r['label_fraction']:.0%}", "fit once", *cells), r["method"]


def test_real_eeg_rows_are_means_over_folds(rendered):
    _, text = rendered
    for folder in sorted((FIXTURE / "real").iterdir()):
        folds = json.loads((folder / "metrics.json").read_text())["results"]
        for method in dict.fromkeys(r["method"] for r in folds):
            rs = [r for r in folds if r["method"] == method]
            cells = [f"{100 * np.mean([r[k] for r in rs]):.1f} ± {100 * np.std([r[k] for r in rs]):.1f}"
                     for k in ("balanced_accuracy", "auroc", "kappa")]
            collapsed = f"{sum(r['predicted_classes'] == 1 for r in rs)}/{len(rs)}"
            assert row(text, method, *cells, collapsed), (folder.name, method)


def test_the_header_names_the_commit_cpu_date_and_each_notebooks_time(rendered):
    _, text = rendered
    info = json.loads((FIXTURE / "run_info.json").read_text())
    timings = json.loads((FIXTURE / "timings.json").read_text())
    header = text.split("\n## ", 1)[0]
    for fact in (info["commit"], info["cpu"], info["started"], f"{sum(timings.values()) / 60:.1f} minutes"):
        assert fact in header
    assert all(f"{name} {seconds:.0f}" in header for name, seconds in timings.items())


def test_a_section_whose_notebook_did_not_run_is_named_not_invented(tmp_path, rendered):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    shutil.rmtree(run / "foundation")
    text = results.render(results.collect(run), "figures")
    assert "EEGFoundation (notebook 90): not part of" in text
    assert "| EEGFoundation | 100% |" in results.render(results.collect(FIXTURE), "figures")
    assert "| EEGFoundation | 100% |" not in text and "## EEGFoundation" not in text


def test_a_figure_older_than_the_run_is_left_out_as_made_by_another_run(tmp_path):
    run, figures = tmp_path / "run", tmp_path / "figures"
    shutil.copytree(FIXTURE, run)
    params = tmp_path / "params.yaml"
    params.write_text(f"figures_dir: {figures}\n")
    info = json.loads((run / "run_info.json").read_text())
    (run / "run_info.json").write_text(json.dumps({**info, "params": str(params)}))
    figure = figures / "50_report" / "eegdm_vs_baseline.png"
    figure.parent.mkdir(parents=True)
    figure.write_bytes(b"a png")
    start = datetime.strptime(info["started"], "%Y-%m-%d %H:%M UTC").replace(tzinfo=timezone.utc).timestamp()

    def listed():
        return [f for s in results.collect(run)["sections"] for f in s["figures"]]

    os.utime(figure, (start - 60, start - 60))  # from an earlier run: a section this run left out
    assert "50_report/eegdm_vs_baseline.png" not in listed()
    os.utime(figure, (start + 60, start + 60))
    assert "50_report/eegdm_vs_baseline.png" in listed()


def test_the_check_catches_one_changed_digit_in_results_md_or_the_readme(tmp_path, rendered):
    collected, _ = rendered
    results_md, readme = tmp_path / "RESULTS.md", tmp_path / "README.md"
    results_md.write_text(results.render(collected, results.prefix_for(collected, tmp_path)))
    readme.write_text("# x\n" + results.headline(collected) + "\ntext\n" + results.notebooks_block() + "\n")
    assert results.disagreements(collected, results_md, readme) == []
    eegdm = next(line for line in results_md.read_text().splitlines() if line.startswith("| EEGDM | 100% |"))
    digit = next(i for i, ch in enumerate(eegdm) if ch.isdigit() and i > len("| EEGDM | 100% | 2 |"))
    edited = eegdm[:digit] + str((int(eegdm[digit]) + 1) % 10) + eegdm[digit + 1:]
    results_md.write_text(results_md.read_text().replace(eegdm, edited))
    assert results.disagreements(collected, results_md, readme) == ["RESULTS.md"]
    results_md.write_text(results.render(collected, results.prefix_for(collected, tmp_path)))
    readme.write_text(readme.read_text().replace(eegdm, edited))
    assert results.disagreements(collected, results_md, readme) == ["README.md's headline block"]



def test_the_committed_results_md_and_readme_are_the_committed_run_rendered():
    committed = json.loads((REPO / "results" / "run" / "results.json").read_text())
    assert results.disagreements(committed, REPO / "RESULTS.md", REPO / "README.md") == []
    for s in committed["sections"]:
        for fig in s["figures"]:
            assert (REPO / committed["run"]["figures_dir"] / fig).exists(), f"RESULTS.md shows {fig}, which is not committed"


def test_each_claims_interval_is_the_subject_bootstrap_of_the_line_predictions_written_out(rendered):
    """The rendered interval of "EEGDM above EEGNet (kappa)" equals a bootstrap computed here from
    the metrics files by the definition (concatenate the drawn subjects' lines, scikit-learn's kappa)."""
    from test_intervals import slow_bootstrap

    _, text = rendered
    lines = json.loads((FIXTURE / "controls" / "metrics.json").read_text())["test_lines"]
    y, subjects = np.array(lines["label"]), np.array(lines["subject"])

    def predictions(method):
        return np.array([next(r["line_predictions"] for r in json.loads(p.read_text())["results"]
                              if (r["method"], r["label_fraction"]) == (method, 1.0))
                         for p in sorted((FIXTURE / "lft").glob("seed_*/metrics.json"))])

    low, high = 100 * slow_bootstrap(y, predictions("EEGDM"), predictions("EEGNet"), subjects, 2000, 0, 0.95)
    assert len(set(subjects)) >= 3
    claim = next(line for line in text.splitlines() if line.startswith("| 100% | EEGDM above EEGNet (kappa) |"))
    assert f"| [{low:+.2f}, {high:+.2f}] |" in claim
