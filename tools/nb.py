"""Convert notebooks between .ipynb and a percent-format script, for editing outside
JupyterLab and reviewing diffs.

    python tools/nb.py to-py  notebooks/10_data_prep.ipynb  > 10.py
    python tools/nb.py to-nb  10.py notebooks/10_data_prep.ipynb   (outputs are dropped)

Cells start with ``# %%`` (code) or ``# %% [markdown]``; tags go on the marker line as
``# %% tags=["parameters"]``. Re-run the notebook afterwards so it carries the outputs
of its default run (``make notebooks`` does this for all of them).
"""

from __future__ import annotations

import json
import re
import sys

import nbformat

_MARKER = re.compile(r"^# %%(?P<md> \[markdown\])?(?: tags=(?P<tags>\[.*\]))?\s*$")


def to_notebook(text: str) -> nbformat.NotebookNode:
    cells, kind, tags, lines = [], None, [], []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in body.splitlines())
            cell = nbformat.v4.new_markdown_cell(body)
        else:
            cell = nbformat.v4.new_code_cell(body)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for line in text.splitlines():
        m = _MARKER.match(line)
        if m:
            flush()
            kind = "markdown" if m.group("md") else "code"
            tags = json.loads(m.group("tags")) if m.group("tags") else []
            lines = []
        else:
            lines.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "eegdm", "display_name": "Python (eegdm)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def to_script(nb: nbformat.NotebookNode) -> str:
    out = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        suffix = f" tags={json.dumps(tags)}" if tags else ""
        if cell.cell_type == "markdown":
            out.append(f"# %% [markdown]{suffix}")
            out += [f"# {l}" if l else "#" for l in cell.source.splitlines()]
        else:
            out.append(f"# %%{suffix}")
            out += cell.source.splitlines()
        out.append("")
    return "\n".join(out)


def main(argv: list[str]) -> None:
    if len(argv) >= 2 and argv[0] == "to-py":
        sys.stdout.write(to_script(nbformat.read(argv[1], as_version=4)))
    elif len(argv) == 3 and argv[0] == "to-nb":
        nbformat.write(to_notebook(open(argv[1]).read()), argv[2])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
