"""tools/choices.py (`make choices`): each design choice is decided from validation scores only, and the
parameter file is compared with it."""

import sys

import pytest
from conftest import REPO

from eegdm_utils.core.files import atomic_write_json, read_json

sys.path.insert(0, str(REPO / "tools"))
import choices  # noqa: E402
import results  # noqa: E402


def _lft(run_dir, embed, seed, val_kappa, test_kappa):
    atomic_write_json(run_dir / "choices" / f"channel_embed_{embed}" / f"seed_{seed}" / "metrics.json", {"results": [
        {"method": "EEGDM", "label_fraction": 1.0, "val_kappa": val_kappa, "kappa": test_kappa},
        {"method": "EEGDM", "label_fraction": 0.1, "val_kappa": 0.99, "kappa": 0.99}]})  # 10% labels: not a candidate


def test_each_choice_goes_to_the_best_validation_score_whatever_the_test_says(tmp_path):
    for seed, shift in enumerate((0.0, 0.02)):
        _lft(tmp_path, "none", seed, 0.50 + shift, 0.90)  # best on test, worst on validation
        _lft(tmp_path, "channel", seed, 0.60 + shift, 0.10)
        _lft(tmp_path, "mirror", seed, 0.55 + shift, 0.20)
    atomic_write_json(tmp_path / "choices" / "e2i" / "metrics.json", {
        "eeg_encoder_pretrain": {"linear_probe_val_accuracy": {"raw EEG": 0.9, "untrained encoder": 0.8,
                                                               "encoder, mask 0.75": 0.30, "encoder, mask 0.25": 0.20,
                                                               "encoder, mask 0.5": 0.25}},
        "eeg_to_image": {"selected_on_validation": {
            "structure-guided": {"val_top1_10way": {"scale 1.0, T 0.5": 0.10, "scale 3.0, T 0.5": 0.16}},
            "both": {"val_top1_10way": {"scale 1.0, T 0.5": 0.15, "scale 3.0, T 0.5": 0.12}}}}})
    params = tmp_path / "params.yaml"
    params.write_text("channel_embed: mirror\ne2i_mask_ratio: 0.75\ne2i_both: false\n")
    decided = choices.main(str(tmp_path), str(params))
    embed = decided["channel_embed"]
    assert embed["chosen"] == "channel" and not embed["agrees"] and embed["in_params"] == "mirror"
    assert embed["candidates"]["channel"]["score"] == pytest.approx(0.61)  # mean over the two seeds
    assert embed["candidates"]["channel"]["std"] == pytest.approx(0.01) and embed["candidates"]["none"]["seeds"] == 2
    mask = decided["e2i_mask_ratio"]
    assert mask["chosen"] == "0.75" and mask["agrees"] and set(mask["candidates"]) == {"0.75", "0.25", "0.5"}
    both = decided["e2i_both"]  # structure-guided's best validation setting (0.16) beats both's (0.15)
    assert both["chosen"] == "false" and both["agrees"]
    written = read_json(tmp_path / "choices" / "choices.json")
    assert written["choices"] == decided and written["params"] == str(params) and written["commit"]
    section = results.sweeps(tmp_path)
    text = "\n".join(" | ".join(r) for t in section["tables"] for r in t["rows"])
    assert "mirror (differs)" in text and "channel: 0.610 ± 0.010" in text


def test_a_missing_candidate_leaves_that_choice_out_and_nothing_found_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="make choices"):
        choices.main(str(tmp_path))
    _lft(tmp_path, "none", 0, 0.5, 0.5)
    _lft(tmp_path, "channel", 0, 0.6, 0.5)  # mirror never ran
    atomic_write_json(tmp_path / "choices" / "e2i" / "metrics.json", {"eeg_encoder_pretrain": {
        "linear_probe_val_accuracy": {"encoder, mask 0.75": 0.3, "encoder, mask 0.5": 0.4}}})
    params = tmp_path / "params.yaml"
    params.write_text("channel_embed: none\ne2i_mask_ratio: 0.75\n")
    decided = choices.main(str(tmp_path), str(params))
    assert set(decided) == {"e2i_mask_ratio"} and decided["e2i_mask_ratio"]["chosen"] == "0.5"
    assert not decided["e2i_mask_ratio"]["agrees"]
