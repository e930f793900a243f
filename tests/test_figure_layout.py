"""Figures fit a 7-inch column or a slide, and every EEG-to-image method keeps one colour."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from eegdm_utils.core.figure_output import FIGURE_MAX_WIDTH, save_figure

ROOT = Path(__file__).resolve().parents[1]


def saved_inches(path: Path) -> float:
    image = Image.open(path)
    return image.size[0] / image.info["dpi"][0]


@pytest.mark.parametrize("width, overhang", [(9.0, ""), (7.0, "a long tick label that overhangs the canvas " * 2)])
def test_a_saved_figure_is_at_most_7_inches_wide_even_with_labels_over_the_edge(tmp_path, width, overhang):
    fig, ax = plt.subplots(figsize=(width, 2.5))
    ax.set_yticks([0, 1], [overhang or "a", "b"])
    fig.tight_layout()
    inches = saved_inches(save_figure(fig, "wide", tmp_path, dpi=100))
    plt.close(fig)
    assert FIGURE_MAX_WIDTH - 0.3 < inches <= FIGURE_MAX_WIDTH + 0.01  # narrowed to the limit, not far below it


def test_a_narrow_figure_keeps_its_size(tmp_path):
    fig, _ = plt.subplots(figsize=(3.0, 2.0))
    inches = saved_inches(save_figure(fig, "narrow", tmp_path, dpi=100))
    plt.close(fig)
    assert inches < 3.2


def test_every_committed_figure_fits_7_inches_within_the_saved_margin():
    """Drawn within 7 inches, labels included (save_figure narrows what overhangs); the file may add up to
    savefig's white margin, 0.1 inch a side, where text renders a little wider at the saving dpi."""
    widths = {str(p.relative_to(ROOT)): round(saved_inches(p), 2) for p in sorted((ROOT / "figures").rglob("*.png"))}
    assert widths, "no committed figures found"
    margin = 2 * matplotlib.rcParams["savefig.pad_inches"]
    assert {p: w for p, w in widths.items() if w > FIGURE_MAX_WIDTH + margin + 0.01} == {}


def test_every_eeg_to_image_method_has_one_colour_and_its_control_shares_it():
    from eegdm_utils.e2i.plots import E2I_COLORS, e2i_color
    from eegdm_utils.e2i.study import BOUND, CONTRASTIVE, DECODER, TWO_STAGE

    for name in ("DreamDiffusion", "structure-guided", "both", CONTRASTIVE, TWO_STAGE, DECODER, "unconditional", BOUND):
        assert e2i_color(name) == E2I_COLORS[name]
        assert e2i_color(f"{name}, shuffled EEG") == E2I_COLORS[name]
    assert e2i_color(f"{CONTRASTIVE}, held-out classes unseen") == E2I_COLORS[CONTRASTIVE]
    assert len(set(E2I_COLORS.values())) == len(E2I_COLORS)
    with pytest.raises(ValueError, match="no colour for EEG-to-image method"):
        e2i_color("a method nobody has coloured")
