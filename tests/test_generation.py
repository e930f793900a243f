import mne
import numpy as np
import pytest

from eegdm_utils.data.generated_eeg import save_fif, to_store_units
from eegdm_utils.data.montage import TCP_NAMES
from eegdm_utils.data.mulaw import staged_mu_law
from eegdm_utils.eval.generation_metrics import channel_metrics, real_halves, summary


def _pink(rng, n, k, length):
    spec = rng.standard_normal((n, k, length // 2 + 1)) + 1j * rng.standard_normal((n, k, length // 2 + 1))
    f = np.fft.rfftfreq(length, 1 / 200)
    return np.fft.irfft(spec / np.maximum(f, 1.0), n=length) * 5


def test_fif_round_trip(tmp_path):
    rec = np.random.default_rng(0).standard_normal((22, 1000)) * 0.3
    path = save_fif(rec, tmp_path / "gen_0_raw.fif")
    raw = mne.io.read_raw_fif(path, preload=True, verbose="error")
    assert raw.ch_names == list(TCP_NAMES) and raw.info["sfreq"] == 200
    assert np.allclose(raw.get_data() * 1e4, rec, atol=1e-6)
    with pytest.raises(ValueError, match="_raw.fif"):
        save_fif(rec, tmp_path / "gen.fif")


def test_inverse_mu_law_back_to_store_units():
    x = np.linspace(-5, 5, 11)
    assert np.allclose(to_store_units(staged_mu_law(x), mu_law=True), x)
    assert np.array_equal(to_store_units(x, mu_law=False), x)


def test_metrics_on_hand_made_cases():
    rng = np.random.default_rng(0)
    real = _pink(rng, 40, 22, 1000)
    a, b = real_halves(real)
    same = summary(real, real, 200)
    assert same["log_psd_rmse"] < 1e-12 and same["band_ratio_diff"] < 1e-12 and same["amplitude_ks"] == 0
    halves = summary(a, b, 200)
    white = summary(rng.standard_normal((20, 22, 1000)) * real.std(), a, 200)
    # white noise has the right amplitude but the wrong spectrum
    assert white["log_psd_rmse"] > 3 * halves["log_psd_rmse"]
    assert white["band_ratio_diff"] > 3 * halves["band_ratio_diff"]
    scaled = summary(a * 4, b, 200)  # right spectrum shape, wrong amplitude
    assert scaled["amplitude_ks"] > 3 * halves["amplitude_ks"]
    df = channel_metrics(a, b, 200)
    assert list(df["channel"]) == list(TCP_NAMES)
    missing = b.copy()
    missing[:, 3] = np.nan
    assert len(channel_metrics(a, missing, 200)) == 21  # a missing channel is left out, not scored
