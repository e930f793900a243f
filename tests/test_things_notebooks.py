"""The real-data door end to end: notebooks 80 and 85 run on a tiny release in THINGS-EEG2's
layout (RGB images, 17 channels at 100 Hz, test concepts never in training), with every step
cut to a handful, and write the paired data, the encoder and the metric table."""

import json

import papermill
import pytest
from conftest import REPO, write_things_release

CHANNELS = ["Pz", "P3", "P7", "O1", "Oz", "O2", "P4", "P8", "P1", "P5", "PO7", "PO3", "POz", "PO4", "PO8", "P6", "P2"]
TINY_85 = {"e2i_seeds": [0], "e2i_ablation_seeds": [0], "e2i_judge_steps": 3, "e2i_embedder_steps": 3,
           "e2i_structure_steps": 3, "e2i_unet_channels": [8, 16], "e2i_generator_steps": 3, "e2i_controlnet_steps": 2,
           "e2i_batch": 16, "e2i_head_steps": 2, "e2i_head_batch": 16, "e2i_finetune_steps": 2, "e2i_curve_steps": [0, 2],
           "e2i_guidance_scales": [2.0], "e2i_semantic_temperatures": [1.0], "e2i_ddim_steps": 2, "e2i_val_images": 6,
           "e2i_test_images": 0, "e2i_grid_images": 3, "e2i_grid_samples": 1, "e2i_unseen_classes": []}


def run(name, folder, parameters):
    papermill.execute_notebook(REPO / "notebooks" / f"{name}.ipynb", folder / f"{name}.ipynb", parameters=parameters,
                               kernel_name="eegdm", cwd=str(REPO / "notebooks"), progress_bar=False)


@pytest.mark.usefixtures("one_thread")
def test_notebooks_80_and_85_run_on_a_things_eeg2_release(tmp_path):
    release = tmp_path / "release"
    write_things_release(release, [f"{k:05d}_train{k}" for k in range(1, 11)],
                         [f"{k:05d}_test{k}" for k in range(11, 17)], per_concept=3, train_reps=2, test_reps=2,
                         subjects=(1,), channel_names=CHANNELS)
    common = {"run_dir": str(tmp_path / "run"), "figures_dir": str(tmp_path / "figures"), "e2i_threads": 1}
    run("80_eeg_encoder_pretrain", tmp_path, {
        **common, "e2i_things_root": str(release), "e2i_things_subjects": [1], "e2i_image_size": 8,
        "e2i_image_channels": 3, "e2i_val_fraction": 0.2, "e2i_use_corpus": False, "e2i_pretrain_steps": 2,
        "e2i_pretrain_batch": 16, "e2i_mask_ablations": [], "e2i_encoder_dim": 16, "e2i_encoder_depth": 1})
    paired = json.loads((tmp_path / "run" / "e2i" / "paired" / "meta.json").read_text())
    assert paired["source"] == "THINGS-EEG2 preprocessed release" and paired["image_channels"] == 3
    assert paired["image_shape"] == [8, 8, 3] and paired["eeg_shape"][1:] == [17, 100]
    assert paired["split_counts"] == {"train": 24, "val": 6, "test": 6}  # 2 of 10 training concepts validate
    run("85_eeg_to_image", tmp_path, {**common, **TINY_85})
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["eeg_to_image"]
    assert metrics["test_images"] == 6 and "structure-guided" in metrics["summary"]
    assert metrics["zero_shot"] == {}  # THINGS' test split is zero-shot already
    assert (tmp_path / "figures" / "85_eeg_to_image" / "reconstructions.png").exists()
