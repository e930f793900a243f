import copy
import math

import pytest
import torch

from eegdm_utils.models.s4d import S4D


def _recurrence(layer: S4D, u: torch.Tensor, rate: float = 1.0) -> torch.Tensor:
    """Direct state-space recurrence (complex, float64): the definition S4D must match.

    forward:  x_l = exp(dt A) x_{l-1} + dB u_l,  y_l = 2 Re(C x_l)
    backward: the same on the reversed sequence, shifted by one (strictly anti-causal).
    """
    dtA, W = layer.kernel.discrete(rate)  # W = C * dB
    dA, W = torch.exp(dtA.cdouble()), W.cdouble()
    B, L, H = u.shape

    def run(seq, c):
        x = torch.zeros(B, H, dA.shape[1], dtype=torch.cdouble)
        out = []
        for l in range(L):
            x = dA * x + seq[:, l, :, None]
            out.append(2 * (W[c] * x).sum(-1).real)
        return torch.stack(out, dim=1)

    y = run(u, 0)
    if layer.bidirectional:
        back = run(u.flip(1), 1).flip(1)
        y = y + torch.cat([back[:, 1:], torch.zeros_like(back[:, :1])], dim=1)
    return y + u * layer.D.double()


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("L", [37, 64])
def test_kernel_matches_recurrence(bidirectional, L):
    torch.manual_seed(0)
    layer = S4D(6, d_state=16, bidirectional=bidirectional)
    u = torch.randn(2, L, 6)
    layer64 = copy.deepcopy(layer).double()
    with torch.no_grad():
        expected = _recurrence(layer64, u.double())
        got = layer(u).double()  # float32 computation
        assert ((got - expected).norm() / expected.norm()).item() < 1e-5
        got64 = layer64(u.double())
        assert ((got64 - expected).norm() / expected.norm()).item() < 1e-10


def test_backward_direction_only_sees_the_future():
    torch.manual_seed(1)
    layer = S4D(4, d_state=8, bidirectional=True).double()
    with torch.no_grad():
        layer.kernel.C[0].zero_()  # silence the forward (causal) kernel
        layer.D.zero_()
    u = torch.zeros(1, 50, 4, dtype=torch.double)
    u[0, 30] = 1.0
    y = layer(u)
    assert y[0, 30:].abs().max() < 1e-12  # nothing at or after the impulse
    assert y[0, :30].abs().max() > 1e-3


def test_rate_rescales_dt_exactly():
    torch.manual_seed(2)
    layer = S4D(8, d_state=16)
    k_rate = layer.kernel(100, rate=200 / 190)
    with torch.no_grad():
        layer.kernel.log_dt += math.log(200 / 190)
    assert torch.allclose(k_rate, layer.kernel(100), atol=1e-6)


def test_rate_keeps_the_physical_response():
    """A smooth signal at 200 Hz, and the same signal at 100 Hz with rate = 2, give the same
    output at the common time points: the layer describes a continuous-time system."""
    torch.manual_seed(3)
    layer = S4D(8, d_state=16, dt_min=1e-3, dt_max=1e-2).double()
    with torch.no_grad():
        layer.kernel.A_imag.mul_(0.05)  # modes well below both Nyquist frequencies
        layer.D.zero_()
        t = torch.arange(2000, dtype=torch.double) / 200
        signal = torch.sin(2 * math.pi * 1.5 * t) + 0.5 * torch.sin(2 * math.pi * 0.7 * t + 1)
        full = signal[None, :, None].repeat(1, 1, 8)
        half = full[:, ::2]
        y_full = layer(full)[:, ::2]
        # ZOH: dB ~ dt B, so the discrete convolution is a Riemann sum of the continuous one
        y_half = layer(half, rate=2.0)
        inner = slice(100, -100)
        err = (y_half - y_full)[:, inner].norm() / y_full[:, inner].norm()
        wrong = (layer(half) - y_full)[:, inner].norm() / y_full[:, inner].norm()
    assert err < 0.05
    assert wrong > 5 * err  # ignoring the rate is measurably wrong


def test_kernel_is_batch_independent_and_computed_once():
    layer = S4D(4, d_state=8)
    calls = []
    original = layer.kernel.forward
    layer.kernel.forward = lambda *a, **k: calls.append(1) or original(*a, **k)
    u = torch.randn(16, 30, 4)
    y = layer(u)
    assert len(calls) == 1
    with torch.no_grad():  # each sample's output is what it gives alone: nothing mixes across the batch
        for i in (0, 7, 15):
            torch.testing.assert_close(layer(u[i:i + 1]), y[i:i + 1].detach(), rtol=1e-5, atol=1e-6)


def test_fft_conv_backward_is_the_adjoint():
    """The hand-written backward of the FFT convolution against finite differences (float64),
    with the batch summed into the kernel's gradient."""
    from eegdm_utils.models.s4d_kernels import fft_conv

    torch.manual_seed(0)
    u = torch.randn(3, 9, 2, dtype=torch.float64, requires_grad=True)  # [B, L, H]
    k = torch.randn(2, 18, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fft_conv, (u, k))
    # and only what is asked for
    y = fft_conv(u, k.detach())
    (grad_u,) = torch.autograd.grad(y.sum(), u)
    assert grad_u.shape == u.shape


def test_fft_conv_is_the_linear_convolution():
    """y[l] = sum_j u[j] k[(l - j) mod 2L] for l < L: causal taps first, anti-causal taps at the end."""
    from eegdm_utils.models.s4d_kernels import fft_conv

    torch.manual_seed(1)
    u, k = torch.randn(2, 11, 3, dtype=torch.float64), torch.randn(3, 22, dtype=torch.float64)  # [B, L, H], [H, 2L]
    L = u.shape[1]
    direct = torch.zeros_like(u)
    for l in range(L):
        for j in range(L):
            direct[:, l] += u[:, j] * k[:, (l - j) % (2 * L)]
    torch.testing.assert_close(fft_conv(u, k), direct)


@pytest.mark.parametrize("L", [1, 7, 30])
def test_kernel_gradients(L):
    """The kernel's hand-written backward (all S4D parameters and rate) against finite
    differences, in float64, for lengths that do and do not fill the factorisation."""
    torch.manual_seed(2)
    kernel = S4D(3, d_state=6).kernel.double()
    params = [kernel.log_dt, kernel.log_neg_A_real, kernel.A_imag, kernel.B, kernel.C]
    with torch.no_grad():  # away from the symmetric initial values
        for p in params:
            p.add_(0.1 * torch.randn_like(p))

    def f(*values):
        return torch.func.functional_call(kernel, dict(zip(["log_dt", "log_neg_A_real", "A_imag", "B", "C"], values)),
                                          (L, 1.3))

    assert torch.autograd.gradcheck(f, tuple(p.detach().clone().requires_grad_() for p in params))


def test_C_is_complex_standard_normal_as_the_reference():
    """The S4 reference draws C with torch.randn(..., dtype=cfloat): variance 1/2 per real component."""
    from eegdm_utils.models.s4d import S4DKernel

    torch.manual_seed(0)
    C = S4DKernel(256, 128).C.detach()  # [c, H, N, 2]
    assert C.var().item() == pytest.approx(0.5, rel=0.03)
    assert C[..., 0].mean().abs().item() < 0.01


def test_gated_fft_conv_gradients_and_values():
    """z, sigmoid and tanh of the two halves of fft_conv's output (an independent oracle: the
    plain functions), and gradients through all three outputs (gradcheck, float64)."""
    from eegdm_utils.models.s4d_kernels import fft_conv, gated_fft_conv

    torch.manual_seed(0)
    u = torch.randn(2, 12, 6, dtype=torch.float64, requires_grad=True)
    k = torch.randn(6, 24, dtype=torch.float64, requires_grad=True)
    y = fft_conv(u, k)
    z, s, th = gated_fft_conv(u, k)
    torch.testing.assert_close(s, torch.sigmoid(y[..., :3]))
    torch.testing.assert_close(th, torch.tanh(y[..., 3:]))
    torch.testing.assert_close(z, s * th)
    assert torch.autograd.gradcheck(lambda u, k: gated_fft_conv(u, k)[0], (u, k))
    assert torch.autograd.gradcheck(lambda u, k: sum(t.sin().sum() for t in gated_fft_conv(u, k)), (u, k))
    with pytest.raises(ValueError, match="even number of channels"):
        gated_fft_conv(u[..., :5], k[:5])


def test_step_response_is_the_continuous_systems_at_the_sample_times():
    """Zero-order hold is exact for piecewise-constant input: the kernel's running sum (the
    response to a unit step) equals the continuous system's step response at t = (l + 1) dt,
    2 Re sum_n C_n B_n (exp(A_n t) - 1) / A_n, written here from the parameters alone (an
    oracle independent of the layer's discretisation; dt B in place of the hold fails it)."""
    from eegdm_utils.models.s4d import S4DKernel

    torch.manual_seed(0)
    kernel = S4DKernel(3, d_state=8, channels=1, dt_min=0.01, dt_max=0.1).double()
    with torch.no_grad():
        kernel.log_neg_A_real.add_(0.3 * torch.randn_like(kernel.log_neg_A_real))  # not all -1/2
        kernel.B.add_(0.5 * torch.randn_like(kernel.B))
        L = 200
        step = kernel(L)[0].cumsum(-1)  # [H, L]
        dt = torch.exp(kernel.log_dt)[:, None, None]  # [H, 1, 1]
        A = torch.complex(-torch.exp(kernel.log_neg_A_real), kernel.A_imag)[..., None]  # [H, N, 1]
        B, C = torch.view_as_complex(kernel.B)[..., None], torch.view_as_complex(kernel.C[0])[..., None]
        t = dt * torch.arange(1, L + 1, dtype=torch.float64)  # [H, 1, L]
        expected = 2 * (C * B * torch.expm1(A * t) / A).sum(1).real  # [H, L]
    torch.testing.assert_close(step, expected, rtol=1e-9, atol=1e-9)
