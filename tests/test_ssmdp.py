import numpy as np
import torch

from eegdm_utils.models.diffusion import DiffusionConfig, add_noise, ddpm_scheduler, velocity, x0_from_v
from eegdm_utils.models.s4d import S4D
from eegdm_utils.models.ssmdp import SSMDP, SSMDPConfig, ssm_parameter_groups

SMALL = SSMDPConfig(d_model=16, d_state=8, n_layer=3, d_cond=32, d_cond_embed=16)


def test_paper_configuration_parameter_count():
    assert sum(p.numel() for p in SSMDP(SSMDPConfig()).parameters()) == 5_931_649


def test_output_starts_at_zero_and_conditioning_starts_silent():
    model = SSMDP(SMALL)
    x = torch.randn(3, 1, 50)
    out = model(x, torch.tensor([0, 10, 49]), torch.tensor([0, 5, 21]))
    assert out.shape == (3, 1, 50) and torch.count_nonzero(out) == 0  # zero-initialised output layer
    assert all(torch.count_nonzero(b.cond_linear.weight) == 0 for b in model.blocks)


def test_activations_shapes_and_ranges(perturbed_ssmdp):
    from eegdm_utils.train.latent_cache import block_activity

    model = perturbed_ssmdp(SMALL)
    x, t, c = torch.randn(2, 1, 40), torch.tensor([1, 1]), torch.tensor([3, 4])
    with torch.no_grad():
        gate, filt = (torch.stack(a, dim=1) for a in zip(*block_activity(model, x, t, c)))
        gate30 = torch.stack([g for g, _ in block_activity(model, x, torch.tensor([30, 30]), c)], dim=1)
    assert gate.shape == filt.shape == (2, 3, 40, 16)
    assert gate.min() >= 0 and gate.max() <= 1  # after the sigmoid
    assert filt.min() >= -1 and filt.max() <= 1  # after the tanh
    assert not torch.allclose(gate30, gate)  # t matters


def test_block_is_the_unfused_wavenet_block(perturbed_ssmdp, unfused_block):
    """The fused convolution + gate (and the cache's pass without skips) against the block
    written out with S4D.forward, torch.sigmoid and torch.tanh, forward and gradients."""
    model = perturbed_ssmdp(SMALL)
    block = model.blocks[0]
    x = torch.randn(3, 50, 16, requires_grad=True)
    cond = torch.randn(3, 1, 32)

    fused = block(x, cond)
    expected = unfused_block(block, x, cond)
    for a, b in zip(fused, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    weights = [torch.randn_like(t) for t in expected]
    grads = [torch.autograd.grad(sum((w * t).sum() for w, t in zip(weights, out)), [x, *block.parameters()])
             for out in (fused, expected)]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    nxt, skip, gate, filt = block(x, cond, skip=False)
    assert skip is None
    torch.testing.assert_close(nxt, expected[0], rtol=1e-5, atol=1e-6)
    last = model.blocks[-1](x, cond, skip=False)
    assert last[0] is None and last[1] is None


def test_s4d_parameters_have_their_own_group_without_weight_decay():
    model = SSMDP(SMALL)
    groups = ssm_parameter_groups(model, weight_decay=0.05)
    main, ssm = groups
    s4d_ids = {id(p) for m in model.modules() if isinstance(m, S4D) for p in m.parameters()}
    assert {id(p) for p in ssm["params"]} == s4d_ids and ssm["weight_decay"] == 0.0
    assert main["weight_decay"] == 0.05 and not s4d_ids & {id(p) for p in main["params"]}
    assert len(main["params"]) + len(ssm["params"]) == len(list(model.parameters()))


def test_v_target_identity():
    scheduler = ddpm_scheduler(DiffusionConfig())
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(6, 1, 30, generator=g), torch.randn(6, 1, 30, generator=g)
    t = torch.tensor([0, 1, 10, 25, 40, 49])
    abar = scheduler.alphas_cumprod[t].reshape(-1, 1, 1)
    v = abar.sqrt() * eps - (1 - abar).sqrt() * x0
    assert torch.allclose(velocity(scheduler, x0, eps, t), v, atol=1e-6)
    assert torch.allclose(scheduler.get_velocity(x0, eps, t), v, atol=1e-6)
    xt = add_noise(scheduler, x0, eps, t)
    assert torch.allclose(xt, scheduler.add_noise(x0, eps, t), atol=1e-6)
    assert torch.allclose(x0_from_v(scheduler, xt, v, t), x0, atol=1e-5)


def test_schedules():
    cos = ddpm_scheduler(DiffusionConfig())
    lin = ddpm_scheduler(DiffusionConfig(beta_schedule="linear"))
    assert len(cos.betas) == len(lin.betas) == 50
    assert np.isclose(float(lin.betas[0]), 1e-4) and np.isclose(float(lin.betas[-1]), 0.05)
    assert float(cos.alphas_cumprod[-1]) < 1e-5 < float(lin.alphas_cumprod[-1])
