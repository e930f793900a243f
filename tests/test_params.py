"""The papermill parameter files and the notebooks' parameter cells agree: every key in
params/*.yaml is a parameter of some notebook, with a value of the declared type, and
every parameters cell is one `name: type = value  # meaning` per line."""

import ast
import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
PARAM_FILES = sorted((REPO / "params").rglob("*.yaml"))
TYPES = {"str": str, "int": int, "float": (float, int), "bool": bool, "list": list}


def code_cells(notebook: Path, parameters: bool) -> list[dict]:
    """The notebook's parameters cell(s), or every other code cell."""
    return [c for c in json.loads(notebook.read_text())["cells"]
            if c["cell_type"] == "code" and ("parameters" in c.get("metadata", {}).get("tags", [])) == parameters]


def declarations(notebook: Path) -> dict[str, tuple[str, object, str]]:
    """name -> (declared type, default value, comment) of the notebook's parameters cell."""
    cells = code_cells(notebook, parameters=True)
    assert len(cells) == 1, f"{notebook.name}: expected one cell tagged parameters, found {len(cells)}"
    declared = {}
    for line in "".join(cells[0]["source"]).splitlines():
        if not line.strip():
            continue
        node = ast.parse(line).body[0]
        assert isinstance(node, ast.AnnAssign), f"{notebook.name}: not 'name: type = value': {line!r}"
        assert "#" in line, f"{notebook.name}: parameter without a comment saying what it means: {line!r}"
        declared[node.target.id] = (node.annotation.id, ast.literal_eval(node.value), line.split("#", 1)[1].strip())
    return declared


DECLARED = {nb.stem: declarations(nb) for nb in NOTEBOOKS}
ALL = {nb: {name: d[0] for name, d in declared.items()} for nb, declared in DECLARED.items()}


def default_conflicts(declared: dict[str, dict]) -> dict[str, dict]:
    """Names declared by several notebooks with different defaults: {name: {notebook: default}}."""
    seen: dict[str, dict] = {}
    for nb, params in declared.items():
        for name, (_, default, _) in params.items():
            seen.setdefault(name, {})[nb] = default
    return {name: by_nb for name, by_nb in seen.items() if len({json.dumps(v) for v in by_nb.values()}) > 1}


def test_a_name_shared_by_notebooks_has_one_default():
    conflicts = default_conflicts(DECLARED)
    assert not conflicts, f"one name, several defaults (rename where the meanings differ): {conflicts}"


def test_the_shared_default_check_catches_a_planted_conflict():
    planted = {nb: dict(params) for nb, params in DECLARED.items()}
    kind, _, comment = planted["95_real_eeg"]["pretrain_lr"]
    planted["95_real_eeg"]["pretrain_lr"] = (kind, 1.0e-3, comment)  # 20 declares 2.0e-3
    assert set(default_conflicts(planted)) == {"pretrain_lr"}


@pytest.mark.parametrize("path", PARAM_FILES, ids=lambda p: p.name)
def test_every_key_of_a_parameter_file_has_a_comment(path):
    bare = [line for line in path.read_text().splitlines()
            if line and not line.startswith((" ", "#")) and "#" not in line]
    assert not bare, f"{path.name}: keys without a comment saying what they set: {bare}"


def test_a_parameter_override_that_the_notebook_does_not_declare_stops_the_run():
    import sys

    sys.path.insert(0, str(REPO / "tools"))
    from run import notebook_parameters

    notebook = REPO / "notebooks" / "95_real_eeg.ipynb"
    with pytest.raises(SystemExit, match="95_real_eeg.ipynb: no parameter named notch_freq"):
        notebook_parameters(notebook, {}, {"notch_freq": 60.0})  # 95's mains is real_notch_freq
    params = yaml.safe_load((REPO / "params" / "default.yaml").read_text())
    passed = notebook_parameters(notebook, params, {"real_notch_freq": 60.0})
    assert set(passed) <= set(ALL["95_real_eeg"]) and passed["real_notch_freq"] == 60.0
    assert "notch_freq" in params and "notch_freq" not in passed  # the simulated corpus's mains stays with notebook 10


def test_every_notebook_has_a_run_folder_and_a_figures_folder_where_it_saves_figures_outside_it():
    for name, declared in ALL.items():
        code = "\n".join("".join(c["source"]) for c in code_cells(REPO / "notebooks" / f"{name}.ipynb", parameters=False))
        assert "run_dir" in declared, name
        assert ("figures_dir" in declared) == ("Path(figures_dir)" in code), f"{name}: figures_dir declared but unused, or used undeclared"


@pytest.mark.parametrize("path", PARAM_FILES, ids=lambda p: p.name)
def test_parameter_files_name_real_parameters_with_the_right_types(path):
    values = yaml.safe_load(path.read_text()) or {}
    for key, value in values.items():
        owners = [nb for nb, declared in ALL.items() if key in declared]
        assert owners, f"{path.name}: {key} is not a parameter of any notebook"
        for nb in owners:
            expected = TYPES[ALL[nb][key]]
            assert isinstance(value, expected) and not (expected is not bool and isinstance(value, bool)), \
                f"{path.name}: {key} = {value!r} is not {ALL[nb][key]} (as notebook {nb} declares it)"


def test_shared_names_have_one_type():
    seen = {}
    for nb, declared in ALL.items():
        for key, kind in declared.items():
            assert seen.setdefault(key, kind) == kind, f"{key} is {seen[key]} in one notebook and {kind} in {nb}"


# The EEGDM reference (jhpuah/EEGDM at 976a5f4: conf/pretrain/base.yaml, conf/cache/base.yaml,
# conf/finetune/base.yaml, model/classifier.py), written out here so that params/paper.yaml is
# checked against it, not against itself.
REFERENCE = {
    "d_model": 128, "d_state": 128, "n_layer": 20, "d_cond": 512, "d_cond_embed": 128,
    "beta_schedule": "squaredcos_cap_v2", "mu_law": True, "pretrain_lr": 1.0e-4, "pretrain_batch_size": 108,
    "pretrain_weight_decay": 0.0, "ema_after": 100, "ema_every": 10, "precision": "32-true",
    "t": 1, "input_mode": "clean", "query": "gate", "reduction": "std",
    "finetune_epochs": 50, "warmup_epochs": 20, "patience": 3, "lft_batch_size": 256, "max_lr": 5.0e-4,
    "lft_tokens": 16, "lft_heads": 8, "lft_final_blocks": 8, "fusion": "layer", "lft_init": "uniform",
    "channel_norm": "none", "channel_embed": "none", "class_weight": "none",
}


# EEGFoundation's release (encoder, tokenizer rule, head), as issue 13 lists it
FOUNDATION_REFERENCE = {
    "fm_hidden": 768, "fm_layers": 12, "fm_heads": 12, "fm_intermediate": 3072, "fm_attention_dropout": 0.1,
    "fm_reject_uv": 100.0, "head_width": 512, "head_heads": 8, "patch": 200, "stride": 100, "head_lr": 1.0e-4,
    "head_weight_decay": 0.1,
}


def test_paper_configuration_is_the_reference():
    paper = yaml.safe_load((REPO / "params" / "paper.yaml").read_text())
    differ = {k: (paper.get(k), v) for k, v in {**REFERENCE, **FOUNDATION_REFERENCE}.items() if paper.get(k) != v}
    assert not differ, f"params/paper.yaml differs from the reference (ours, reference): {differ}"


def test_code_defaults_are_the_reference_recipe():
    from eegdm_utils.models.lft import LFTConfig
    from eegdm_utils.train.finetuning import FinetuneConfig
    from eegdm_utils.train.pretraining import PretrainConfig

    f = FinetuneConfig()
    o = f.optim
    assert (o.lr, o.schedule, o.warmup, o.weight_decay, o.betas, o.grad_clip) == (5e-4, "one_cycle", 0.1, 0.05, (0.9, 0.98), 3.0)
    assert (f.label_smoothing, f.ema_beta, f.patience, f.warmup_epochs, f.class_weight) == (0.1, 0.999, 3, 20, "none")
    p = PretrainConfig()
    o = p.optim
    assert (o.lr, o.schedule, o.weight_decay, o.betas, o.grad_clip) == (1e-4, "constant", 0.0, (0.9, 0.999), 1.0)
    assert (p.ema_beta, p.ema_after, p.ema_every) == (0.999, 100, 10)
    assert (LFTConfig().init, LFTConfig().channel_embed) == ("uniform", "none")


MODEL_NOTEBOOKS = ["20_pretrain_ssmdp", "30_cache_latents", "40_finetune_lft", "45_controls", "60_ablations",
                   "70_generation", "80_eeg_encoder_pretrain", "85_eeg_to_image", "90_foundation_baseline",
                   "95_real_eeg"]


@pytest.mark.parametrize("notebook", MODEL_NOTEBOOKS)
def test_every_notebook_that_runs_a_model_honours_the_accelerator_parameter(notebook):
    assert ALL[notebook].get("accelerator") == "str", f"{notebook}: no accelerator parameter"
    code = "\n".join("".join(c["source"]) for c in code_cells(REPO / "notebooks" / f"{notebook}.ipynb", parameters=False))
    uses = [call for call in ("torch_device(accelerator)", "ScaleConfig(accelerator=accelerator") if call in code]
    assert uses, f"{notebook}: declares accelerator but neither picks its device nor its trainer's with it"


def test_accelerator_is_the_only_device_parameter():
    names = {key for declared in ALL.values() for key in declared if "device" in key and key != "devices"}
    assert not names, f"a second device parameter besides accelerator: {sorted(names)}"


def test_paper_configuration_sets_every_parameter_unless_the_notebook_declares_it_scale_free():
    paper = yaml.safe_load((REPO / "params" / "paper.yaml").read_text())
    unset = [f"{nb}: {name}" for nb, params in DECLARED.items() for name, (_, _, comment) in params.items()
             if name not in paper and not comment.endswith("(any scale)")]
    assert not unset, f"params/paper.yaml leaves these at their smoke defaults (set them, or end the notebook's comment with '(any scale)'): {unset}"
