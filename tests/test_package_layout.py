"""The package's layout (the map in eegdm_utils/__init__.py): folders by job, imports one way down
core -> data -> models -> train -> eval (foundation and e2i beside eval), no import cycle, no import
of the package inside a function, and no module name used twice. Read from the source with ast."""

import ast
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "eegdm_utils"
LAYERS = {"core": 0, "data": 1, "models": 2, "train": 3, "eval": 4, "foundation": 4, "e2i": 4}


def modules() -> dict[str, ast.Module]:
    return {".".join(f.relative_to(PACKAGE.parent).with_suffix("").parts): ast.parse(f.read_text())
            for f in sorted(PACKAGE.rglob("*.py"))}


def package_imports(name: str, tree: ast.Module):
    """(imported module, the import node) of every import of the package in ``name``'s source."""
    package = name.split(".")[:-1] if not name.endswith("__init__") else name.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            elif (node.module or "").startswith("eegdm_utils"):
                target = node.module.split(".")
            else:
                continue
            for alias in node.names:  # `from . import x` imports the module x
                full = ".".join(target + [alias.name])
                yield (full if full in ALL else ".".join(target)), node
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("eegdm_utils"):
                    yield alias.name, node


ALL = set(modules())


def top_level(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 2 else ""


def test_every_module_sits_in_a_folder_of_the_map():
    loose = [m for m in ALL if top_level(m) not in LAYERS and m != "eegdm_utils.__init__"]
    assert not loose, f"modules outside the folders of the map: {loose}"


def test_imports_go_one_way_down_the_layers():
    upward = []
    for name, tree in modules().items():
        if name == "eegdm_utils.__init__":
            continue
        for target, _ in package_imports(name, tree):
            src, dst = top_level(name), top_level(target)
            if dst not in LAYERS:
                continue
            if LAYERS[dst] > LAYERS[src] or (LAYERS[dst] == LAYERS[src] and dst != src):
                upward.append(f"{name} -> {target}")
    assert not upward, "imports against the layering:\n" + "\n".join(upward)


def test_no_import_of_the_package_inside_a_function():
    inner = []
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for child in ast.walk(node):
                    if isinstance(child, ast.ImportFrom) and (child.level or (child.module or "").startswith("eegdm_utils")):
                        inner.append(f"{name}.{node.name}: {ast.unparse(child)}")
    assert not inner, "\n".join(inner)


def test_no_import_cycle():
    graph = defaultdict(set)
    for name, tree in modules().items():
        for target, _ in package_imports(name, tree):
            if target in ALL and target != name:
                graph[name].add(target)
    state, cycles = {}, []

    def visit(node, path):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in list(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_name_is_used_twice():
    by_name = defaultdict(list)
    for name in ALL:
        if not name.endswith("__init__"):
            by_name[name.rsplit(".", 1)[1]].append(name)
    twice = {k: v for k, v in by_name.items() if len(v) > 1}
    assert not twice, f"module names used in several folders: {twice}"


def test_the_checks_see_a_planted_cycle_and_an_upward_import(tmp_path, monkeypatch):
    """The checks above read real imports: a cycle and an upward import written into a copy are found."""
    copy = tmp_path / "eegdm_utils"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    scoring = copy / "core" / "scoring.py"  # eval.report imports core.scoring: this closes a cycle
    scoring.write_text(scoring.read_text() + "\nfrom ..eval.report import METRICS\n")
    this = sys.modules[__name__]
    monkeypatch.setattr(this, "PACKAGE", copy)
    monkeypatch.setattr(this, "ALL", set(modules()))
    with pytest.raises(AssertionError, match="eegdm_utils.core.scoring -> eegdm_utils.eval.report"):
        test_imports_go_one_way_down_the_layers()
    with pytest.raises(AssertionError, match="import cycles: .*eegdm_utils.core.scoring"):
        test_no_import_cycle()
