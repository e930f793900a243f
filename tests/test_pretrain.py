from dataclasses import replace

import pytest
import torch

from eegdm_utils.models.ssmdp import SSMDPConfig
from eegdm_utils.train.optim import OptimSettings
from eegdm_utils.train.pretraining import PretrainConfig, load_denoiser, planned_steps, train_ssmdp

TINY_MODEL = SSMDPConfig(d_model=8, d_state=4, n_layer=2, d_cond=16, d_cond_embed=8)


def _config(steps: int) -> PretrainConfig:
    return PretrainConfig(model=TINY_MODEL, batch_size=4, max_steps=steps, optim=OptimSettings(lr=1e-3, grad_clip=1.0),
                          ema_after=2, ema_every=2)


def test_a_run_extended_to_more_steps_ends_where_the_longer_run_ends(tiny_store, tmp_path):
    straight, _ = train_ssmdp(tmp_path / "straight", tiny_store, _config(8), val_every=5, ckpt_every=4, max_val_samples=16)
    train_ssmdp(tmp_path / "extended", tiny_store, _config(4), val_every=5, ckpt_every=4, max_val_samples=16)
    with pytest.raises(ValueError, match="max_steps"):  # without extend, other steps are other settings
        train_ssmdp(tmp_path / "extended", tiny_store, _config(8), val_every=5, ckpt_every=4, max_val_samples=16)
    extended, _ = train_ssmdp(tmp_path / "extended", tiny_store, _config(8), val_every=5, ckpt_every=4,
                              max_val_samples=16, extend=True)
    assert (extended.start_step, extended.global_step) == (4, 8)
    a, b = straight.state_dict(), extended.state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)
    one_cycle = replace(_config(10), optim=replace(_config(10).optim, schedule="one_cycle"))
    with pytest.raises(ValueError, match="other settings"):  # a schedule that depends on the length: not extendable
        train_ssmdp(tmp_path / "extended", tiny_store, one_cycle, val_every=5, ckpt_every=4, max_val_samples=16,
                    extend=True)


def test_resumed_run_ends_with_the_same_weights(tiny_store, tmp_path):
    straight, _ = train_ssmdp(tmp_path / "straight", tiny_store, _config(10), val_every=5, ckpt_every=4, max_val_samples=16)
    # "interrupted" after 4 steps: a run that stopped there, then the same run resumed to 10
    train_ssmdp(tmp_path / "resumed", tiny_store, _config(4), val_every=5, ckpt_every=4, max_val_samples=16)
    last = tmp_path / "resumed" / "pretrain" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=False)
    assert checkpoint["global_step"] == 4
    checkpoint["hyper_parameters"]["config"]["max_steps"] = 10  # as if it had been asked for 10 steps
    torch.save(checkpoint, last)
    resumed, _ = train_ssmdp(tmp_path / "resumed", tiny_store, _config(10), val_every=5, ckpt_every=4, max_val_samples=16)
    assert resumed.global_step == straight.global_step == 10
    assert (straight.start_step, resumed.start_step) == (0, 4)
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert any(k.startswith("ema.ema_model.") for k in a)  # the EMA is part of the comparison


def test_checkpoint_describes_itself(tiny_store, tmp_path):
    train_ssmdp(tmp_path, tiny_store, _config(3), val_every=5, ckpt_every=5, max_val_samples=16)
    ckpt = torch.load(tmp_path / "pretrain" / "ssmdp.ckpt", weights_only=False)
    assert ckpt["global_step"] == 3
    assert ckpt["hyper_parameters"]["config"]["model"]["d_model"] == 8
    assert ckpt["optimizer_states"] and "ema.step" in ckpt["state_dict"]
    model, config = load_denoiser(tmp_path / "pretrain" / "ssmdp.ckpt")
    assert config.max_steps == 3 and not any(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="lr"):
        train_ssmdp(tmp_path, tiny_store, PretrainConfig(**{**_config(3).__dict__, "optim": OptimSettings(lr=0.5)}), val_every=5)


def test_missing_checkpoint_names_the_notebook(tmp_path):
    with pytest.raises(FileNotFoundError, match="20_pretrain_ssmdp"):
        load_denoiser(tmp_path / "pretrain" / "ssmdp.ckpt")


def test_planned_steps_counts_epochs_or_steps_and_never_both():
    assert planned_steps(0, 800, n_train=1000, batch_size=32) == 800
    assert planned_steps(2, 0, n_train=1000, batch_size=32) == 2 * 32  # ceil(1000 / 32) = 32 batches an epoch
    assert planned_steps(1, 0, n_train=64, batch_size=32) == 2
    with pytest.raises(ValueError, match="pretrain_epochs 100 and pretrain_steps 2 are both set"):
        planned_steps(100, 2, n_train=1000, batch_size=32)
    with pytest.raises(ValueError, match="both 0"):
        planned_steps(0, 0, n_train=1000, batch_size=32)
