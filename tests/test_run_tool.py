"""tools/run.py: the tiers run every notebook they promise, in an order where each reads what the ones
before it wrote, and every override of every step names a parameter of its notebook."""

import sys

import pytest
import yaml
from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
import run  # noqa: E402

NOTEBOOKS = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("tier, params", [("demo", "demo.yaml"), ("run", "default.yaml"), ("full", "default.yaml"),
                                          ("run", "smoke.yaml"), ("run", "paper.yaml"), ("paper-dry", "paper.yaml")])
def test_every_step_of_a_tier_resolves_its_parameters(tier, params):
    values = yaml.safe_load((REPO / "params" / params).read_text())
    for notebook, _, overrides in run.plan(tier, [0, 1, 2]):
        declared = run.declared_parameters(REPO / "notebooks" / f"{notebook}.ipynb")
        resolved = run.notebook_parameters(REPO / "notebooks" / f"{notebook}.ipynb", values, overrides)
        assert set(resolved) <= set(declared), notebook


def test_make_run_runs_every_notebook_but_the_ablation_sweep_in_dependency_order():
    steps = run.plan("run", [0, 1, 2])
    outputs = [out for _, out, _ in steps]
    assert len(outputs) == len(set(outputs))  # no step overwrites another's executed notebook
    order = [nb for nb, _, _ in steps]
    assert set(order) == set(NOTEBOOKS) - {"60_ablations"}
    assert [out for nb, out, _ in steps if nb == "40_finetune_lft"] == [f"40_finetune_lft_seed{s}" for s in (0, 1, 2)]
    first = {nb: order.index(nb) for nb in order}
    for before, after in [("10_data_prep", "20_pretrain_ssmdp"), ("20_pretrain_ssmdp", "30_cache_latents"),
                          ("30_cache_latents", "40_finetune_lft"), ("40_finetune_lft", "50_report"),
                          ("45_controls", "50_report"), ("90_foundation_baseline", "50_report"),
                          ("80_eeg_encoder_pretrain", "85_eeg_to_image"), ("90_foundation_baseline", "95_real_eeg")]:
        assert first[before] < first[after], (before, after)
    assert "95_real_eeg_chbmit" not in outputs  # make full's


def test_make_full_adds_only_what_make_run_trims_and_the_chbmit_run():
    trimmed = {out: o for _, out, o in run.plan("run", [0])}
    full = run.plan("full", [0])
    assert [out for _, out, _ in full if out not in trimmed] == ["95_real_eeg_chbmit"]
    for notebook, out, overrides in full:
        if out in trimmed:
            added = {k: v for k, v in overrides.items() if trimmed[out].get(k) != v}
            assert set(added) <= set(run.FULL), (out, added)
    assert {k for _, _, o in full for k in o} >= set(run.FULL)  # each reaches a notebook
    chbmit = [o for nb, out, o in full if out == "95_real_eeg_chbmit"][0]
    assert chbmit["real_notch_freq"] == 60.0 and chbmit["split_by"] == "time"  # a US one-patient recording
    assert "self-supervised" in chbmit["routes"]


def test_an_unknown_tier_is_an_error_naming_the_tiers():
    with pytest.raises(SystemExit, match="expected demo, run, full or paper-dry"):
        run.plan("fast", [0])


def test_the_paper_dry_run_runs_every_notebook_with_the_papers_models():
    steps = run.plan("paper-dry", [0])
    assert {nb for nb, _, _ in steps} == set(NOTEBOOKS)
    assert {k for _, _, o in steps for k in o} == set(run.PAPER_DRY) | {"seed"}  # each override reaches a notebook
    paper = yaml.safe_load((REPO / "params" / "paper.yaml").read_text())
    models = {"d_model", "d_state", "n_layer", "d_cond", "d_cond_embed", "lft_tokens", "lft_heads", "lft_final_blocks",
              "fm_hidden", "fm_layers", "fm_heads", "fm_intermediate", "e2i_encoder_dim", "e2i_encoder_depth", "head_width",
              "head_heads", "patch", "stride", "mu_law", "beta_schedule", "query", "reduction", "t", "fusion"}
    assert models <= set(paper) and not models & set(run.PAPER_DRY)  # the paper's models as they are


def test_a_dry_run_that_builds_another_size_stops_naming_the_model(tmp_path):
    from eegdm_utils.core.files import atomic_write_json

    atomic_write_json(tmp_path / "metrics.json", {"pretrain": {"n_params": 5_931_649}})
    atomic_write_json(tmp_path / "lft" / "seed_0" / "metrics.json", {"n_params": 6_898_950})
    atomic_write_json(tmp_path / "foundation" / "metrics.json", {"pretraining": {"release": {"parameters": 87_192_278}}})
    run.check_paper_sizes(tmp_path)  # the paper's sizes: passes
    atomic_write_json(tmp_path / "lft" / "seed_0" / "metrics.json", {"n_params": 6_898_951})
    with pytest.raises(SystemExit, match="Latent Fusion Transformer has 6,898,951 parameters, not 6,898,950"):
        run.check_paper_sizes(tmp_path)
