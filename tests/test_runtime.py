"""runtime.torch_device: a notebook's accelerator parameter as a torch device, with a clear error."""

import pytest
import torch

from eegdm_utils.core.runtime import torch_device


def test_auto_follows_what_the_machine_has(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert torch_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert torch_device("auto") == torch.device("cuda")
    assert torch_device("GPU") == torch.device("cuda")
    assert torch_device("cuda:1") == torch.device("cuda:1")
    assert torch_device("cpu") == torch.device("cpu")


def test_a_gpu_that_is_not_there_or_an_unknown_name_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        torch_device("gpu")
    with pytest.raises(ValueError, match="'tpu'"):
        torch_device("tpu")


def test_scale_banner_names_the_scale_of_the_run_folder(tmp_path):
    from eegdm_utils.core.runtime import scale_banner

    assert "smoke scale" in scale_banner("runs/smoke") and "not a result" in scale_banner("runs/smoke/")
    assert "params/default.yaml" in scale_banner(tmp_path / "runs" / "default")
    assert "paper.yaml" in scale_banner("runs/paper")
    assert scale_banner(tmp_path / "mine").startswith("run folder mine/: your own settings")
