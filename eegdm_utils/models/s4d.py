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
kernel, flipped, as in the S4 reference implementation. The convolution and the
Vandermonde product run in the hand-written autograd kernels of :mod:`.s4d_kernels`
(torch.fft on every device; the backward reuses the forward's spectra).

``rate`` multiplies dt. The EEGDM reference's reduced-sampling test resamples to
``200 * rate`` Hz and passes the same ``rate`` to the layer: ``rate = fs / 200`` (0.95 for
190 Hz, :func:`reference_rate`). Note that this shortens dt at a lower rate, where keeping a
mode's frequency per second would lengthen it (``200 / fs``); the reference's convention is
the one its Table VIII was measured with.

C is drawn complex standard normal (variance 1/2 per real component), as the S4 reference.

Shape letters: B batch, H channels, L length, N complex modes, c kernel directions.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .s4d_kernels import fft_conv, gated_fft_conv, vandermonde


def reference_rate(fs: float, trained_fs: float = 200.0) -> float:
    """The ``rate`` the EEGDM reference uses for a recording at ``fs`` Hz: ``fs / 200``."""
    return fs / trained_fs


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
        C = torch.randn(channels, H, N, dtype=torch.cfloat)  # variance 1/2 per component
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
        K = vandermonde(dtA, 2 * W.permute(1, 0, 2), L)  # [H, c, L], with the 2 of 2 Re(.)
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

    def _kernel_and_input(self, u: torch.Tensor, rate: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(k [H, 2L] with the D skip as its lag-0 tap, u) in the working precision (FFTs need >= fp32)."""
        work = torch.float32 if u.dtype in (torch.float16, torch.bfloat16) else u.dtype
        k = self.conv_kernel(u.shape[1], rate).to(work)  # [H, 2L]
        # D is a tap at lag 0 of the same convolution, not a separate pass
        k = torch.cat([k[:, :1] + self.D.to(work)[:, None], k[:, 1:]], dim=1)
        return k, u.to(work)

    def forward(self, u: torch.Tensor, rate: float = 1.0) -> torch.Tensor:
        k, v = self._kernel_and_input(u, rate)
        return fft_conv(v, k).to(u.dtype)  # [B, L, H]

    def gated(self, u: torch.Tensor, rate: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The WaveNet gate on this layer's output, in one pass (:func:`gated_fft_conv`): the
        first H/2 channels of ``forward(u)`` are the gate, the others the filter.
        u [B, L, H] -> (sigmoid(gate) * tanh(filter), sigmoid(gate), tanh(filter)), [B, L, H/2] each."""
        k, v = self._kernel_and_input(u, rate)
        return tuple(t.to(u.dtype) for t in gated_fft_conv(v, k))
