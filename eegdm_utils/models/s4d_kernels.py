"""The hand-written autograd kernels behind :mod:`eegdm_utils.models.s4d`: the FFT convolution
(plain and fused with the SSMDP's gate), whose backward reuses the forward's spectra, and the
factorised Vandermonde product that gives the S4D kernel. Each is checked against torch's own
autograd by gradcheck (``tests/test_s4d.py``); the model reads as if they were torch functions.

Shape letters: B batch, H channels, L length, N complex modes."""

from __future__ import annotations

import math

import torch


def _padded_channels_first(x: torch.Tensor) -> torch.Tensor:
    """[B, L, H] -> [B, H, 2L]: x transposed, then L zeros (one copy, half a fill)."""
    B, L, H = x.shape
    out = x.new_empty(B, H, 2 * L)  # [B, H, 2L]
    out[..., L:].zero_()
    out[..., :L].copy_(x.transpose(1, 2))
    return out


class _FFTConv(torch.autograd.Function):
    """Linear convolution y = (u * k)[:L] through FFTs of length 2L (torch.fft: MKL or
    pocketfft on CPU, cuFFT on GPU), with a hand-written backward.

    u [B, L, H] (channels last, as the layers around it), k [H, 2L] -> y [B, L, H]. The
    FFTs run along a contiguous last axis; the transposes to and from it are the copies
    that the zero padding needs anyway. The spectra of u and k are kept for the backward,
    which costs one forward and one inverse FFT of the batch: grad_u = (g correlated with
    k)[:L] and grad_k = sum over the batch of g correlated with u, both as products in the
    DFT domain.
    """

    @staticmethod
    def forward(ctx, u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        L = u.shape[1]
        U = torch.fft.rfft(_padded_channels_first(u))  # [B, H, L+1]
        K = torch.fft.rfft(k, n=2 * L)  # [H, L+1]
        ctx.save_for_backward(U, K)
        Y = torch.empty_like(U)
        torch.mul(U, K, out=Y)  # [B, H, L+1]
        return torch.fft.irfft(Y, n=2 * L)[..., :L].transpose(1, 2).contiguous()  # [B, L, H]

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        U, K = ctx.saved_tensors
        return _conv_backward(ctx, U, K, torch.fft.rfft(_padded_channels_first(g)), g.shape[1])


def _tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) = 2 sigmoid(2x) - 1: the same function to float rounding (absolute error ~1e-7),
    several times cheaper than torch.tanh on CPU, where sigmoid is vectorised and tanh is not."""
    return torch.sigmoid(x * 2).mul_(2).sub_(1)


class _GatedFFTConv(torch.autograd.Function):
    """(z, s, th) with y = (u * k)[:L] as in :class:`_FFTConv`, s = sigmoid(y_gate), th =
    tanh(y_filter), z = s th, where y_gate and y_filter are the first and second half of y's
    channels: the convolution and the WaveNet gate of an SSMDP block as one function.

    Why one function: the convolution's output is channels-first after the inverse FFT, and
    the gate runs there, on contiguous rows, before the one transpose back (of H/2 channels
    instead of H); the backward writes the gate's derivative straight into the zero-padded
    buffer of the next FFT. s and th are returned as transposed views [B, L, H/2] of
    channels-first tensors (what the latent cache reads); their gradients are supported.
    """

    @staticmethod
    def forward(ctx, u: torch.Tensor, k: torch.Tensor):
        ctx.set_materialize_grads(False)
        L, half = u.shape[1], u.shape[2] // 2
        U = torch.fft.rfft(_padded_channels_first(u))  # [B, H, L+1]
        K = torch.fft.rfft(k, n=2 * L)  # [H, L+1]
        y = torch.fft.irfft(U * K, n=2 * L)  # [B, H, 2L]
        s = torch.sigmoid(y[:, :half, :L])  # [B, H/2, L]
        th = _tanh(y[:, half:, :L])
        del y
        z = (s * th).transpose(1, 2).contiguous()  # [B, L, H/2]
        ctx.save_for_backward(U, K, s, th)
        return z, s.transpose(1, 2), th.transpose(1, 2)

    @staticmethod
    def backward(ctx, dz, ds, dth):
        U, K, s, th = ctx.saved_tensors
        B, half, L = s.shape
        g = U.new_empty(B, 2 * half, 2 * L, dtype=s.dtype)  # d loss / d y, zero-padded for the FFT
        g[..., L:].zero_()
        dgate, dfilt = g[:, :half, :L], g[:, half:, :L]  # [B, H/2, L] views
        if dz is None:
            dgate.zero_()
            dfilt.zero_()
        else:
            dz = dz.transpose(1, 2)  # [B, H/2, L]
            torch.mul(dz, th, out=dgate)
            torch.mul(dz, s, out=dfilt)
        if ds is not None:
            dgate.add_(ds.transpose(1, 2))
        if dth is not None:
            dfilt.add_(dth.transpose(1, 2))
        dgate.addcmul_(dgate, s, value=-1).mul_(s)  # x (1 - s) s
        dfilt.addcmul_(dfilt * th, th, value=-1)  # x (1 - th^2)
        return _conv_backward(ctx, U, K, torch.fft.rfft(g), L)


def _conv_backward(ctx, U: torch.Tensor, K: torch.Tensor, G: torch.Tensor, L: int):
    """(grad_u [B, L, H], grad_k [H, 2L]) of y = (u * k)[:L] from the spectrum G [B, H, L+1] of
    the zero-padded output gradient; ``ctx.needs_input_grad`` says which are needed."""
    grad_u = grad_k = None
    if ctx.needs_input_grad[1]:
        if G.device.type == "cpu":  # a running sum: no [B, H, L+1] temporary, less memory traffic
            GU = G[0] * U[0].conj()  # [H, L+1]
            for b in range(1, G.shape[0]):
                GU.addcmul_(G[b], U[b].conj())
        else:  # one kernel launch rather than B
            GU = (G * U.conj()).sum(0)  # [H, L+1]
        grad_k = torch.fft.irfft(GU, n=2 * L)  # [H, 2L]
    if ctx.needs_input_grad[0]:
        grad_u = torch.fft.irfft(G.mul_(K.conj()), n=2 * L)[..., :L].transpose(1, 2).contiguous()  # [B, L, H]
    return grad_u, grad_k


def gated_fft_conv(u: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """u [B, L, H], k [H, 2L] -> (z, s, th), [B, L, H/2] each: s = sigmoid and th = tanh of the
    first and second half of the channels of :func:`fft_conv`'s output, z = s th."""
    if u.shape[-1] % 2:
        raise ValueError(f"the gate needs an even number of channels, got {u.shape[-1]}")
    return _GatedFFTConv.apply(u, k)


def fft_conv(u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Linear convolution of u [B, L, H] with k [H, 2L] (causal part first, anti-causal part
    at the end) along L, first L outputs: [B, L, H]. u and k in float32 or float64."""
    return _FFTConv.apply(u, k)


def _powers(a: torch.Tensor, b: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """exp((a + ib) m) = exp(a m) (cos(b m) + i sin(b m)) as (real, imaginary): [H, N] x [M] -> [H, N, M]."""
    decay, angle = torch.exp(a[..., None] * m), b[..., None] * m
    return decay * torch.cos(angle), decay * torch.sin(angle)


class _Vandermonde(torch.autograd.Function):
    """K[h, c, l] = Re sum_n W[h, c, n] z[h, n]^l for l < L, with log z = dt A, and its
    gradients by hand (autograd through complex tensors costs several times more on CPU).

    With l = qP + r (P ~ sqrt(L)) the powers factor as z^(qP) z^r: two [H, N, ~sqrt(L)]
    tables and one batched matrix product over the modes, forward (in real arithmetic) and
    backward. Backward, for the incoming gradient G: S0 = sum_l G z^l and S1 = sum_l G l z^l
    (the same factorisation); then dW = conj(S0) and d(dt A) = conj(sum_c W S1), in the
    convention of torch's complex gradients.
    """

    @staticmethod
    def forward(ctx, dtA: torch.Tensor, W: torch.Tensor, L: int) -> torch.Tensor:  # [H, N], [H, c, N] complex
        H, c, N = W.shape
        P = max(1, math.ceil(math.sqrt(L)))
        Q = math.ceil(L / P)
        a, b = dtA.real, dtA.imag  # [H, N]
        r = torch.arange(P, device=a.device, dtype=a.dtype)
        q = torch.arange(Q, device=a.device, dtype=a.dtype) * P
        in_re, in_im = _powers(a, b, r)  # [H, N, P]: z^r
        out_re, out_im = (t.transpose(1, 2)[:, None] for t in _powers(a, b, q))  # [H, 1, Q, N]: z^(qP)
        w_re, w_im = W.real[:, :, None], W.imag[:, :, None]  # [H, c, 1, N]
        X_re = (w_re * out_re - w_im * out_im).reshape(H, c * Q, N)  # [H, c*Q, N]: W z^(qP)
        X_im = (w_re * out_im + w_im * out_re).reshape(H, c * Q, N)
        K = torch.baddbmm(X_re @ in_re, X_im, in_im, alpha=-1.0)  # [H, c*Q, P]: Re(X z^r)
        ctx.save_for_backward(W, torch.complex(in_re, in_im), torch.complex(out_re, out_im), r, q)
        return K.reshape(H, c, Q * P)[:, :, :L]  # [H, c, L]

    @staticmethod
    def backward(ctx, G: torch.Tensor):  # [H, c, L] real
        W, inner, outer, r, q = ctx.saved_tensors
        H, c, N = W.shape
        P, Q, L = r.shape[0], q.shape[0], G.shape[-1]
        Gp = G.new_zeros(H, c, Q * P, dtype=W.dtype)
        Gp[:, :, :L] = G
        Gp = Gp.reshape(H, c * Q, P)  # [H, c*Q, P]
        inner_t = inner.transpose(1, 2)  # [H, P, N]
        T = torch.bmm(Gp, inner_t).reshape(H, c, Q, N)  # sum_r G z^r
        V = torch.bmm(Gp * r, inner_t).reshape(H, c, Q, N).add_(T * q[:, None])  # sum_r G (qP + r) z^r
        S0 = (outer * T).sum(2)  # [H, c, N]: sum_l G z^l
        S1 = (outer * V).sum(2)  # [H, c, N]: sum_l G l z^l
        return (W * S1).sum(1).conj(), S0.conj(), None


def vandermonde(dtA: torch.Tensor, W: torch.Tensor, L: int) -> torch.Tensor:
    """Re sum_n W[h, c, n] exp(dtA[h, n] l) for l < L: [H, N] and [H, c, N] complex -> [H, c, L] real
    (:class:`_Vandermonde`, with its hand-written gradients)."""
    return _Vandermonde.apply(dtA, W, L)
