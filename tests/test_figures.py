"""Figure helpers: the montage draws a window at its own scale and labels its scale bar in µV."""

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from eegdm_utils.eval.figures import plot_montage, scale_bar_length


def test_scale_bar_lengths_are_1_2_5_times_a_power_of_ten():
    assert [scale_bar_length(v) for v in (1.0, 2.5, 7.0, 0.03, 166_487.8)] == [1.0, 2.0, 5.0, 0.02, 100_000.0]


def test_montage_spacing_and_scale_bar_follow_the_data():
    rng = np.random.default_rng(0)
    fig, (a, b) = plt.subplots(1, 2)
    assert plot_montage(a, rng.normal(size=(4, 200)) * 0.2, 100, spacing=1.0) == 1.0
    assert [t.get_text() for t in a.texts] == ["100 µV"]  # one unit is 100 µV
    huge = rng.normal(size=(4, 200)) * 1e4
    spacing = plot_montage(b, huge, 100)
    assert np.isclose(spacing, 2.5 * huge.std())
    assert [t.get_text() for t in b.texts] == ["2,000,000 µV"]  # 2.5e4 units -> a 2e4-unit bar
    plt.close(fig)


def test_figure_output_writes_each_format_at_its_dpi(tmp_path):
    from PIL import Image

    from eegdm_utils.core.figure_output import save_figure
    from eegdm_utils.eval.figures import style

    try:
        style(["png", "pdf", "svg"], 220)
        fig, ax = plt.subplots(figsize=(2, 1))
        ax.plot([0, 1])
        assert save_figure(fig, "line", tmp_path) == tmp_path / "line.png"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["line.pdf", "line.png", "line.svg"]  # no temp files left
        assert round(Image.open(tmp_path / "line.png").info["dpi"][0]) == 220
        assert (tmp_path / "line.pdf").read_bytes().startswith(b"%PDF")
        svg = (tmp_path / "line.svg").read_bytes()
        save_figure(fig, "line", tmp_path)
        assert (tmp_path / "line.svg").read_bytes() == svg  # the same figure gives the same file
        plt.close(fig)
    finally:
        style()


def test_figure_output_rejects_unknown_formats_and_keeps_the_last_setting(tmp_path):
    import pytest

    from eegdm_utils.core.figure_output import save_figure
    from eegdm_utils.eval.figures import style

    for formats, dpi in ((["png", "tiff"], 110), ([], 110), (["png"], 0)):
        with pytest.raises(ValueError, match="figure_"):
            style(formats, dpi)
    fig, _ = plt.subplots(figsize=(2, 1))
    save_figure(fig, "kept", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["kept.png"]
    plt.close(fig)


def test_every_method_row_of_the_collection_has_its_familys_colour():
    from eegdm_utils.eval.figures import METHOD_COLORS, method_color
    from eegdm_utils.eval.real_eeg import ROUTES
    from eegdm_utils.eval.report import FOUNDATION_METHODS, REQUIRED_METHODS

    expected = {  # written out: a control never takes the method's colour, a probe never the LFT's
        "EEGDM": "EEGDM", "EEGDM, untrained backbone": "untrained backbone", "EEGNet": "EEGNet",
        "band powers + logistic regression": "band powers", "linear probe, pretrained cache": "linear probe, pretrained",
        "linear probe, untrained cache": "linear probe, untrained", "EEGFoundation": "EEGFoundation",
        "EEGFoundation head, no embedding": "EEGFoundation, no embedding",
        "EEGDM, transfer (simulated-corpus backbone)": "EEGDM",
        "EEGDM, self-supervised on the fold's training subjects": "EEGDM, self-supervised",
        "EEGDM, untrained backbone (control)": "untrained backbone",
        "linear probe, transfer backbone's latents": "linear probe, pretrained",
        "EEGNet (supervised, raw windows)": "EEGNet", "EEGFoundation (min-max tokens, released head)": "EEGFoundation",
    }
    for method, family in expected.items():
        assert method_color(method) == METHOD_COLORS[family], method
    for method in (*REQUIRED_METHODS, *FOUNDATION_METHODS, *ROUTES.values()):
        method_color(method)  # every row name of the report and of notebook 95 has a colour
    assert len(set(METHOD_COLORS.values())) == len(METHOD_COLORS)  # one colour per family
    with pytest.raises(ValueError, match="no colour for method"):
        method_color("a method nobody has coloured")
