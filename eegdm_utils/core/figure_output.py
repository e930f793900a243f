"""Saving figures: the formats and resolution of every figure written from now on, and
:func:`save_figure`, which keeps every saved figure within a two-column page's width."""

from __future__ import annotations

import os
from pathlib import Path

FIGURE_FORMATS = ("png", "pdf", "svg", "jpg")
_figure_output = {"formats": ("png",), "dpi": 110}


def set_figure_output(formats=("png",), dpi: int = 110) -> None:
    """What :func:`save_figure` writes from now on: one file per format (``png`` for the
    notebooks and the README, ``pdf``/``svg`` for a paper) at ``dpi`` (raster formats; 300 for
    print). Set by :func:`eegdm_utils.eval.figures.style` from each notebook's ``figure_formats`` and
    ``figure_dpi`` parameters."""
    formats = tuple(str(f).lower().lstrip(".") for f in ([formats] if isinstance(formats, str) else formats))
    unknown = [f for f in formats if f not in FIGURE_FORMATS]
    if not formats or unknown:
        raise ValueError(f"figure_formats {list(formats)}: each must be one of {list(FIGURE_FORMATS)}")
    if int(dpi) < 1:
        raise ValueError(f"figure_dpi {dpi}: must be a positive number of dots per inch")
    _figure_output.update(formats=formats, dpi=int(dpi))


FIGURE_MAX_WIDTH = 7.0  # inches: a two-column page's full width, or a slide


def fit_width(fig, max_width: float = FIGURE_MAX_WIDTH) -> float:
    """Narrow ``fig`` until what ``savefig(bbox_inches="tight")`` writes (the tight bounding box,
    labels that overhang the canvas included, plus the padding on both sides) is at most
    ``max_width`` inches wide; the height stays. Returns the saved width."""
    import matplotlib

    pad = 2 * float(matplotlib.rcParams["savefig.pad_inches"])
    # text measured at the screen dpi comes out a little wider at the saving dpi: keep a margin
    saved = lambda: fig.get_tightbbox(fig.canvas.get_renderer()).width + pad + 0.1  # inches
    width = saved()
    if width <= max_width:
        return width
    # labels that overhang the canvas overhang more as it narrows: bisect the canvas width
    width, height = (float(v) for v in fig.get_size_inches())  # the canvas, no longer the saved area
    narrow, wide = 0.0, width
    for _ in range(14):
        fig.set_size_inches((narrow + wide) / 2, height)
        if saved() <= max_width:
            narrow = (narrow + wide) / 2
        else:
            wide = (narrow + wide) / 2
    # a title or legend wider than the limit on its own cannot be fitted by narrowing: keep the figure
    fig.set_size_inches(narrow if narrow > 0.5 * width else width, height)
    return saved()


def save_figure(fig, name: str, figures_dir: str | os.PathLike, dpi: int | None = None) -> Path:
    """Save ``fig`` as ``figures_dir/<name>.<format>`` for each format of
    :func:`set_figure_output` (PNG at 110 dpi unless set), at most :data:`FIGURE_MAX_WIDTH` inches
    wide (:func:`fit_width`); the one helper every notebook uses. Each file is written whole or not
    at all. Returns the path of the first format."""
    fit_width(fig)
    paths = []
    for fmt in _figure_output["formats"]:
        out = Path(figures_dir) / f"{name}.{fmt}"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp.{fmt}")
        metadata = {"svg": {"Creator": None, "Date": None}, "jpg": None,  # no tool or date stamps: same figure, same bytes
                    "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}.get(fmt, {"Software": None})
        fig.savefig(tmp, dpi=dpi or _figure_output["dpi"], bbox_inches="tight",
                    **({} if metadata is None else {"metadata": metadata}))
        os.replace(tmp, out)
        paths.append(out)
    return paths[0]
