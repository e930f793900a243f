"""S4D-Lin: a diagonal structured state-space layer (Gu et al. 2022, "On the
Parameterization and Initialization of Diagonal State Space Models"), bidirectional,
as used by the EEGDM denoiser.

Each of H channels holds N complex modes (conjugate pairs, so ``d_state = 2N`` real
states) of the continuous system x' = A x + B u, y = 2 Re(C x) + D u with
A_n = -1/2 + i pi n (S4D-Lin). Zero-order hold with step dt gives the convolution kernel

    K[l] = 2 Re( sum_n C_n dB_n exp(dt A_n l) ),   dB = (exp(dt A) - 1) / A * B.

The kernel does not depend on the batch, so it is computed once per call, and cheaply:
with l = qP + r the Vandermonde factorises as exp(dt A qP) exp(dt A r), a product of two
small tables contracted over the modes with one batched matrix product. The convolution
is an FFT over 2L (so it is linear, not circular); the backward direction is a second
kernel, flipped, as in the S4 reference implementation. On CPU the FFTs run through
scipy's pocketfft in a custom autograd function (several times faster than torch.fft on
the 2-core machines this project targets); on GPUs through torch.fft.

``rate`` rescales dt: a layer trained at 200 Hz applied to a recording at ``fs`` Hz uses
``rate = 200 / fs`` (e.g. 200/190 for 190 Hz), so that a mode keeps its physical
frequency and decay per second rather than per sample.

Shape letters: B batch, H channels, L length, N complex modes, c kernel directions.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import torch
from torch import nn

def _fft_workers() -> int:
    """scipy's FFT threads follow torch's intra-op threads (OMP_NUM_THREADS)."""
    return max(1, torch.get_num_threads())


class _CPUFFTConv(torch.autograd.Function):
    """Linear convolution y = (u * k)[:L] via FFTs of length 2L, on CPU with scipy's
    pocketfft, which is several times faster than torch.fft here (forward and backward).

    u [B, H, L], k [H, 2L] -> y [B, H, L]. Backward: grad_u = (g correlated with k)[:L],
    grad_k = sum over the batch of g correlated with u; both as products in the DFT domain.
    """

    @staticmethod
    def forward(ctx, u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        L = u.shape[-1]
        n = 2 * L
        U = scipy.fft.rfft(u.detach().numpy(), n=n, axis=-1, workers=_fft_workers())  # [B, H, L+1]
        K = scipy.fft.rfft(k.detach().numpy(), n=n, axis=-1, workers=_fft_workers())  # [H, L+1]
        y = scipy.fft.irfft(U * K, n=n, axis=-1, workers=_fft_workers())[..., :L]  # [B, H, L], a strided view
        ctx.save_for_backward(torch.from_numpy(U), torch.from_numpy(K))
        return torch.from_numpy(y)  # the caller's transpose makes the one copy

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        U, K = (t.numpy() for t in ctx.saved_tensors)
        n = 2 * (U.shape[-1] - 1)
        L = n // 2
        G = scipy.fft.rfft(g.contiguous().numpy(), n=n, axis=-1, workers=_fft_workers())  # [B, H, L+1]
        grad_u = grad_k = None
        if ctx.needs_input_grad[0]:
            grad_u = torch.from_numpy(scipy.fft.irfft(G * np.conj(K), n=n, axis=-1, workers=_fft_workers())[..., :L])
        if ctx.needs_input_grad[1]:
            grad_k = torch.from_numpy(scipy.fft.irfft((G * np.conj(U)).sum(0), n=n, axis=-1, workers=_fft_workers()))
        return grad_u, grad_k


def fft_conv(u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Linear convolution of u [B, H, L] with k [H, 2L] (causal part first, anti-causal part
    at the end), first L outputs. scipy on CPU, torch.fft elsewhere."""
    L = u.shape[-1]
    if u.device.type == "cpu" and u.dtype in (torch.float32, torch.float64) and k.dtype == u.dtype:
        return _CPUFFTConv.apply(u, k)
    return torch.fft.irfft(torch.fft.rfft(u, n=2 * L) * torch.fft.rfft(k, n=2 * L), n=2 * L)[..., :L]


def _cexp(z: torch.Tensor) -> torch.Tensor:
    """exp of a complex tensor through real, vectorised exp/cos/sin (torch's complex exp is slow on CPU)."""
    return torch.polar(torch.exp(z.real), z.imag)


class S4DKernel(nn.Module):
    """The parameters of S4D-Lin and the kernel they define."""

    def __init__(self, d_model: int, d_state: int = 128, channels: int = 2, dt_min: float = 1e-3,
                 dt_max: float = 1e-1):
        super().__init__()
        if d_state % 2:
            raise ValueError(f"d_state must be even (conjugate pairs), got {d_state}")
        H, N = d_model, d_state // 2
        log_dt = torch.rand(H) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)  # [H]
        self.log_dt = nn.Parameter(log_dt)
        self.log_neg_A_real = nn.Parameter(torch.full((H, N), math.log(0.5)))  # A_real = -exp(.) = -1/2
        self.A_imag = nn.Parameter(math.pi * torch.arange(N, dtype=torch.float32).repeat(H, 1))  # [H, N]
        self.B = nn.Parameter(torch.view_as_real(torch.ones(H, N, dtype=torch.cfloat)).clone())  # [H, N, 2]
        C = torch.randn(channels, H, N, dtype=torch.cfloat) * math.sqrt(0.5)
        self.C = nn.Parameter(torch.view_as_real(C).clone())  # [c, H, N, 2]

    def discrete(self, rate: float = 1.0):
        """(dt*A [H, N] complex, C*dB [c, H, N] complex) for step ``dt * rate``."""
        dt = torch.exp(self.log_dt) * rate  # [H]
        A = torch.complex(-torch.exp(self.log_neg_A_real), self.A_imag)  # [H, N]
        dtA = dt[:, None] * A  # [H, N]
        dB = torch.expm1(dtA) / A * torch.view_as_complex(self.B)  # [H, N]
        return dtA, torch.view_as_complex(self.C) * dB  # [c, H, N]

    def forward(self, L: int, rate: float = 1.0) -> torch.Tensor:
        """Kernel [c, H, L] (real)."""
        dtA, W = self.discrete(rate)
        c, H, N = W.shape
        P = max(1, math.ceil(math.sqrt(L)))  # L = Q*P (+ padding)
        Q = math.ceil(L / P)
        r = torch.arange(P, device=dtA.device, dtype=torch.float32)
        q = torch.arange(Q, device=dtA.device, dtype=torch.float32) * P
        inner = _cexp(dtA[:, :, None] * r)  # [H, N, P]
        outer = W[:, :, :, None] * _cexp(dtA[:, :, None] * q)[None]  # [c, H, N, Q]
        outer = outer.permute(1, 0, 3, 2).reshape(H, c * Q, N)  # [H, c*Q, N]
        # Re(outer @ inner) with real matrix products (contiguous: strided views make bmm loop)
        K = torch.baddbmm(outer.real.contiguous() @ inner.real.contiguous(), outer.imag.contiguous(),
                          inner.imag.contiguous(), alpha=-1.0)  # [H, c*Q, P]
        K = 2 * K.reshape(H, c, Q * P)[:, :, :L]  # [H, c, L]
        return K.transpose(0, 1)  # [c, H, L]


class S4D(nn.Module):
    """Bidirectional (or causal) S4D-Lin convolution with a D skip.

    Input and output [B, L, H] (channels last, as the surrounding linear layers).
    """

    def __init__(self, d_model: int, d_state: int = 128, bidirectional: bool = True, dt_min: float = 1e-3,
                 dt_max: float = 1e-1):
        super().__init__()
        self.bidirectional = bidirectional
        self.kernel = S4DKernel(d_model, d_state, 2 if bidirectional else 1, dt_min, dt_max)
        self.D = nn.Parameter(torch.randn(d_model))  # [H]

    def conv_kernel(self, L: int, rate: float = 1.0) -> torch.Tensor:
        """The length-2L kernel [H, 2L] of the linear convolution (backward part flipped to the end)."""
        k = self.kernel(L, rate)  # [c, H, L]
        if not self.bidirectional:
            return nn.functional.pad(k[0], (0, L))  # [H, 2L]
        # y[l] += sum_{j>l} k1[j-l-1] u[j]: the anti-causal half, as in the S4 reference
        return nn.functional.pad(k[0], (0, L)) + nn.functional.pad(k[1].flip(-1), (L, 0))  # [H, 2L]

    def forward(self, u: torch.Tensor, rate: float = 1.0) -> torch.Tensor:
        B, L, H = u.shape
        work = torch.float32 if u.dtype in (torch.float16, torch.bfloat16) else u.dtype  # FFTs need >= fp32
        k = self.conv_kernel(L, rate).to(work)  # [H, 2L]
        # D is a tap at lag 0 of the same convolution, not a separate pass
        k = torch.cat([k[:, :1] + self.D.to(work)[:, None], k[:, 1:]], dim=1)
        # FFTs along a contiguous last axis are much faster than along axis 1
        u_t = u.to(work).transpose(1, 2).contiguous()  # [B, H, L]
        return fft_conv(u_t, k).transpose(1, 2).contiguous().to(u.dtype)  # [B, L, H]
