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


def parameters(notebook: Path) -> dict[str, str]:
    cells = [c for c in json.loads(notebook.read_text())["cells"]
             if c["cell_type"] == "code" and "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{notebook.name}: expected one cell tagged parameters, found {len(cells)}"
    declared = {}
    for line in "".join(cells[0]["source"]).splitlines():
        if not line.strip():
            continue
        node = ast.parse(line).body[0]
        assert isinstance(node, ast.AnnAssign), f"{notebook.name}: not 'name: type = value': {line!r}"
        assert "#" in line, f"{notebook.name}: parameter without a comment saying what it means: {line!r}"
        declared[node.target.id] = node.annotation.id
    return declared


ALL = {nb.stem: parameters(nb) for nb in NOTEBOOKS}


def test_every_notebook_has_run_and_figure_folders():
    for name, declared in ALL.items():
        assert {"run_dir", "figures_dir"} <= set(declared), name


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
