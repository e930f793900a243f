"""The ablation table (notebook 60, tools/ablations.py): gathering the sweep, the summary, the
comparison with the paper and the figures."""

import numpy as np
import pytest

from eegdm_utils.core.files import atomic_write_json
from eegdm_utils.eval.ablation_report import gather, paper_agreement, plot_agreement, plot_table, summary
from eegdm_utils.eval.ablations import VARIANTS
from eegdm_utils.eval.paper import PAPER_ABLATIONS, PAPER_NAMES, PAPER_RESULTS


def _write(run_dir, variant, seed, kappa, seconds=10.0):
    rows = [{"variant": variant, "table": VARIANTS[variant].table, "seed": seed, "label_fraction": f,
             "kappa": kappa, "balanced_accuracy": kappa / 2, "weighted_f1": kappa, "val_kappa": kappa, "epochs": 3}
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
