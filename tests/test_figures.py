"""Figure helpers: the montage draws a window at its own scale and labels its scale bar in uV."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from eegdm_utils.figures import _nice, plot_montage  # noqa: E402


def test_nice_scale_bar_lengths():
    assert [_nice(v) for v in (1.0, 2.5, 7.0, 0.03, 166_487.8)] == [1.0, 2.0, 5.0, 0.02, 100_000.0]


def test_montage_spacing_and_scale_bar_follow_the_data():
    rng = np.random.default_rng(0)
    fig, (a, b) = plt.subplots(1, 2)
    assert plot_montage(a, rng.normal(size=(4, 200)) * 0.2, 100, spacing=1.0) == 1.0
    assert [t.get_text() for t in a.texts] == ["100 uV"]  # one unit is 100 uV
    huge = rng.normal(size=(4, 200)) * 1e4
    spacing = plot_montage(b, huge, 100)
    assert np.isclose(spacing, 2.5 * huge.std())
    assert [t.get_text() for t in b.texts] == ["2,000,000 uV"]  # 2.5e4 units -> a 2e4-unit bar
    plt.close(fig)
