"""Inference throughput of the frozen SSMDP backbone: the latent pass of the cache (notebook
30), of notebook 40's test pass and of the controls, in windows per second (22 channels of
1,000 samples each, pooled gate standard deviations of every block), timed in one run against
the same pass written with plain PyTorch operators.

    .venv/bin/python benchmarks/backbone_inference.py                      # default and paper config, CPU
    .venv/bin/python benchmarks/backbone_inference.py --device cuda --windows 2000

``ours`` is :func:`eegdm_utils.train.latent_cache.window_latents` as the notebooks call it: the kernel once
per block and call, all channels of ``--batch-windows`` windows in one batch, the convolution
and the gate fused (channels-first gate, one transpose of H channels), no skip outputs (only
the denoiser's head reads them), the pooled standard deviation in two vectorised passes.
``plain`` is the same computation as the block's training forward writes it: S4D output
[B, L, 2H], chunk, torch.sigmoid / torch.tanh, both halves of the output projection,
torch.std. Both under ``torch.inference_mode``. Notebook 40's test pass of a first seed runs
340 windows through two backbones (pretrained and untrained), so its backbone time is about
680 / (windows per second). Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager
from unittest import mock

import numpy as np
import torch
from ssmdp_step import PAPER, default_config

from eegdm_utils.core.runtime import keep_freed_memory
from eegdm_utils.models.diffusion import DiffusionConfig, ddpm_scheduler
from eegdm_utils.models.ssmdp import SSMDP
from eegdm_utils.train import latent_cache as cache
from eegdm_utils.train.latent_cache import CacheConfig, window_latents


def plain_block_activity(backbone, x, t, channel, rate: float = 1.0):
    """The blocks as their training forward was written before the fused gate (the comparison)."""
    cond = backbone.condition(t, channel)
    h = backbone.in_layer(x.transpose(1, 2))
    for block in backbone.blocks:
        y = block.s4d(block.in_linear(block.norm(h) + block.cond_linear(cond)), rate)  # [M, L, 2H]
        gate, filt = y.chunk(2, dim=-1)
        gate, filt = torch.sigmoid(gate), torch.tanh(filt)
        out = block.out_linear(gate * filt)
        h = None if block.is_last else out.chunk(2, dim=-1)[1] + h
        yield gate, filt


@contextmanager
def plain_pass():
    with mock.patch.object(cache, "block_activity", plain_block_activity), \
            mock.patch.object(cache, "sample_std", lambda x, dim: x.std(dim=dim)):
        yield


def windows_per_second(backbone, windows: np.ndarray, batch_windows: int, device: str) -> float:
    config, scheduler = CacheConfig(batch_windows=batch_windows), ddpm_scheduler(DiffusionConfig())
    present = np.ones(windows.shape[:2], dtype=bool)

    def run(n):
        for start in range(0, n, batch_windows):
            window_latents(backbone, windows[start:start + batch_windows], present[start:start + batch_windows],
                           config, scheduler, True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    with torch.inference_mode():
        run(batch_windows)  # warm-up: plans, allocator
        t0 = time.perf_counter()
        run(len(windows))
    return len(windows) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--windows", type=int, default=340, help="windows per timing (notebook 40's test split: 340)")
    parser.add_argument("--paper-windows", type=int, default=16, help="windows per timing of the paper config")
    parser.add_argument("--batch-windows", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of (plain, ours)")
    args = parser.parse_args()
    keep_freed_memory()
    windows = np.random.default_rng(0).normal(0, 0.05, (args.windows, 22, 1000)).astype(np.float32)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, windows of 22 channels "
          f"x 1,000 samples ({args.windows} for the default config, {args.paper_windows} for the paper's), "
          f"{args.batch_windows} per call")
    print("| config | plain (windows/s) | ours (windows/s) | speed-up | notebook 40 first-seed backbone time, ours |")
    print("|---|---|---|---|---|")
    for name, config, n in (("default", default_config(), args.windows), ("paper", PAPER, args.paper_windows)):
        torch.manual_seed(0)
        backbone = SSMDP(config).to(args.device).eval().requires_grad_(False)
        rates = {"plain": [], "ours": []}
        for _ in range(args.rounds):
            with plain_pass():
                rates["plain"].append(windows_per_second(backbone, windows[:n], args.batch_windows, args.device))
            rates["ours"].append(windows_per_second(backbone, windows[:n], args.batch_windows, args.device))
        plain, ours = (float(np.median(r)) for r in rates.values())
        print(f"| {name} | {plain:.1f} | {ours:.1f} | {ours / plain:.2f}x | {680 / ours:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
