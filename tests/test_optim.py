"""The one optimiser and schedule settings type: each schedule against an independent oracle."""

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from eegdm_utils.train.optim import OptimSettings, adamw, lr_schedule


def _rates(settings_: OptimSettings, total: int) -> list[float]:
    optimizer = adamw([torch.nn.Parameter(torch.zeros(1))], settings_)
    schedule = lr_schedule(optimizer, settings_, total)
    rates = []
    for _ in range(total):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if schedule is not None:
            schedule.step()
    return rates


def test_adamw_takes_every_setting():
    s = OptimSettings(lr=3e-4, weight_decay=0.2, betas=(0.8, 0.95), eps=1e-6)
    optimizer = adamw([torch.nn.Parameter(torch.zeros(2))], s)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert {k: optimizer.defaults[k] for k in ("lr", "weight_decay", "betas", "eps")} == {
        "lr": 3e-4, "weight_decay": 0.2, "betas": (0.8, 0.95), "eps": 1e-6}


def test_parameter_groups_keep_their_own_decay_and_lr():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = adamw([{"params": [a]}, {"params": [b], "weight_decay": 0.0, "lr": 1e-2}],
                      OptimSettings(lr=1e-3, weight_decay=0.05))
    assert [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups] == [(1e-3, 0.05), (1e-2, 0.0)]


def test_constant_schedule_keeps_the_peak():
    assert _rates(OptimSettings(lr=2e-3), 5) == [2e-3] * 5


@pytest.mark.parametrize(("total", "warmup"), [(200, 0.01), (150, 0.01), (10, 0.3), (7, 0.5)])
def test_linear_schedule_is_transformers_linear_warmup_then_decay(total, warmup):
    from transformers import get_linear_schedule_with_warmup

    s = OptimSettings(lr=5e-4, schedule="linear", warmup=warmup)
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=5e-4)
    exact_warmup = max(1, math.ceil(Fraction(str(warmup)) * total))  # 0.3 * 10 is 3, not 3.0000000000000004
    oracle = get_linear_schedule_with_warmup(optimizer, exact_warmup, total)
    expected = []
    for _ in range(total):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        oracle.step()
    assert _rates(s, total) == pytest.approx(expected, abs=1e-15)


def test_cosine_schedule_by_hand():
    # 10 steps, 2 of warm-up: 1/2, 2/2, then 0.5 * (1 + cos(pi * k / 8)) for k = 0..7
    rates = _rates(OptimSettings.for_steps(1.0, 10, 2, schedule="cosine"), 10)
    expected = [0.5, 1.0] + [0.5 * (1 + math.cos(math.pi * k / 8)) for k in range(8)]
    assert rates == pytest.approx(expected)
    assert rates[6] == pytest.approx(0.5)  # half way through the decay


def test_a_warm_up_longer_than_the_run_never_reaches_the_peak():
    assert _rates(OptimSettings.for_steps(1.0, 3, 10, schedule="cosine"), 3) == pytest.approx([0.1, 0.2, 0.3])


def test_one_cycle_peaks_at_its_warm_up_share():
    rates = _rates(OptimSettings(lr=2e-3, schedule="one_cycle", warmup=0.25), 40)
    assert rates.index(max(rates)) == 9 and max(rates) == pytest.approx(2e-3)  # step 0.25 * 40 - 1
    assert rates[0] == pytest.approx(2e-3 / 25)  # torch's default div_factor


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 100_000).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))))
def test_a_warm_up_given_in_steps_comes_back_as_those_steps(n_and_k):
    n, k = n_and_k
    assert OptimSettings.for_steps(1.0, n, k).warmup_steps(n) == k


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="schedule must be one of"):
        OptimSettings(schedule="step")
    with pytest.raises(ValueError, match="warmup is a share"):
        OptimSettings(warmup=-0.1)


def test_betas_from_a_checkpoint_compare_equal():
    assert OptimSettings(betas=[0.9, 0.98]) == OptimSettings(betas=(0.9, 0.98))


def test_a_pretraining_checkpoint_written_before_the_settings_type_reads_back():
    from dataclasses import asdict

    from eegdm_utils.foundation.token_pretraining import FoundationPretrainConfig
    from eegdm_utils.train.pretraining import PretrainConfig

    flat = {**{k: v for k, v in asdict(PretrainConfig()).items() if k != "optim"}, "lr": 3e-4, "weight_decay": 0.1,
            "grad_clip": 1.0}
    restored = PretrainConfig.from_dict(flat)
    assert restored.optim == OptimSettings(lr=3e-4, weight_decay=0.1, grad_clip=1.0)
    old = {**{k: v for k, v in asdict(FoundationPretrainConfig()).items() if k != "optim"}, "lr": 5e-4,
           "betas": [0.9, 0.98], "eps": 1e-6, "weight_decay": 1e-5, "warmup_fraction": 0.02, "grad_clip": 2.0}
    assert FoundationPretrainConfig.from_dict(old).optim == OptimSettings(
        lr=5e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=1e-5, grad_clip=2.0, schedule="linear", warmup=0.02)
