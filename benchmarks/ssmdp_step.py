"""Training throughput of the SSMDP denoiser (samples/s), as a training step runs it:
diffusion loss, backward, gradient clipping, AdamW step, EMA update.

    .venv/bin/python benchmarks/ssmdp_step.py                 # paper config at batch 8 and 32, default config
    .venv/bin/python benchmarks/ssmdp_step.py --naive         # also the straightforward kernel, for the 10x bar
    .venv/bin/python benchmarks/ssmdp_step.py --device cuda   # on a GPU (bf16 autocast with --bf16)
    .venv/bin/python benchmarks/ssmdp_step.py --profile       # where one paper-config step spends its time

The "naive" variant builds the S4D kernel from complex exponentials of every (channel,
mode, position) each step, the straightforward implementation the issue measured at about
45 s per step on a 2-core machine. Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from ema_pytorch import EMA

from eegdm_utils.core.runtime import keep_freed_memory
from eegdm_utils.models.diffusion import DiffusionConfig, add_noise, ddpm_scheduler, velocity
from eegdm_utils.models.s4d import S4DKernel
from eegdm_utils.models.ssmdp import SSMDP, SSMDPConfig, ssm_parameter_groups

PAPER = SSMDPConfig()


def default_config() -> SSMDPConfig:
    """The backbone of params/default.yaml (what `make run` trains)."""
    from pathlib import Path

    import yaml

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params" / "default.yaml").read_text())
    return SSMDPConfig(**{k: params[k] for k in ("d_model", "d_state", "n_layer", "d_cond", "d_cond_embed")})


def naive_kernel(self: S4DKernel, L: int, rate: float = 1.0) -> torch.Tensor:
    """The straightforward kernel: a [c, H, N, L] tensor of complex exponentials."""
    dtA, W = self.discrete(rate)
    positions = torch.arange(L, device=dtA.device)
    vandermonde = torch.exp(dtA[:, :, None] * positions)  # [H, N, L]
    return 2 * torch.einsum("chn,hnl->chl", W, vandermonde).real  # [c, H, L]


def make_step(config: SSMDPConfig, batch: int, device: str, bf16: bool, clip_and_ema: bool = True):
    """One training step as pretraining runs it (loss, backward, clipping, AdamW, EMA); without
    clipping and EMA when ``clip_and_ema`` is False (the reference's step, benchmarks/vs_reference.py)."""
    torch.manual_seed(0)
    model = SSMDP(config).to(device)
    ema = EMA(model, beta=0.999, update_after_step=100, update_every=10, include_online_model=False) if clip_and_ema else None
    optimizer = torch.optim.AdamW(ssm_parameter_groups(model, 0.01), lr=1e-4)
    scheduler = ddpm_scheduler(DiffusionConfig())
    x0 = torch.randn(batch, 1, 1000, device=device)
    channel = torch.randint(0, 22, (batch,), device=device)

    def step():
        t = torch.randint(0, 50, (batch,), device=device)
        noise = torch.randn_like(x0)
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            pred = model(add_noise(scheduler, x0, noise, t), t, channel)
        loss = torch.nn.functional.mse_loss(pred.float(), velocity(scheduler, x0, noise, t))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_and_ema:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if clip_and_ema:
            ema.update()

    return step


def measure(config: SSMDPConfig, batch: int, device: str, steps: int, bf16: bool,
            warmup: int = 3) -> tuple[float, float]:
    step = make_step(config, batch, device, bf16)

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(warmup):  # allocations reach their steady state, MKL/cuFFT plans are made
        step()
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    return seconds, batch / seconds


def profile(config: SSMDPConfig, batch: int, device: str, bf16: bool, rows: int = 25) -> None:
    """The operators of one step by their own CPU time (after a warm-up step)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    step = make_step(config, batch, device, bf16)
    step()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


# what no rewrite of the step can remove: the matrix products of the linear layers (the same
# FLOPs in any implementation of this model) and the FFTs of the S4D convolutions (four
# length-2L transforms of the batch per block, as in the reference's FFTConv)
FLOOR_GROUPS = {"matrix products": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"),
                "FFTs": ("aten::_fft_r2c", "aten::_fft_c2r", "aten::_fft_c2c")}


def op_groups(config: SSMDPConfig, batch: int, device: str = "cpu", clip_and_ema: bool = False) -> dict:
    """Seconds of one step (after a warm-up step) by operator group, from the profiler's self
    CPU times: the floor groups (:data:`FLOOR_GROUPS`), everything else, and the step's total."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    step = make_step(config, batch, device, False, clip_and_ema)
    step()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    own = {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}
    groups = {name: sum(own.get(op, 0.0) for op in ops) for name, ops in FLOOR_GROUPS.items()}
    total = sum(own.values())
    return {**groups, "everything else": total - sum(groups.values()), "total": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per setting (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (the heap grows for 2-3 steps)")
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--naive", action="store_true", help="also time the straightforward kernel")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    parser.add_argument("--profile", action="store_true", help="only profile one paper-config step at the largest batch")
    parser.add_argument("--release-memory", action="store_true",
                        help="leave glibc's malloc at its defaults (large blocks unmapped when freed), as before "
                             "training called runtime.keep_freed_memory")
    args = parser.parse_args()
    kept = False if args.release_memory else keep_freed_memory()
    if args.profile:
        profile(PAPER, max(args.batches), args.device, args.bf16)
        return
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
          f"freed memory kept for reuse: {'yes' if kept else 'no'}")
    print(f"{'config':10s} {'kernel':9s} {'batch':>5s} {'s/step':>8s} {'samples/s':>10s}")
    settings = [("paper", PAPER, b) for b in args.batches] + [("default", default_config(), 32)]
    for name, config, batch in settings:
        seconds, rate = measure(config, batch, args.device, args.steps, args.bf16, args.warmup)
        print(f"{name:10s} {'factored':9s} {batch:5d} {seconds:8.2f} {rate:10.2f}", flush=True)
    if args.naive:
        fast = S4DKernel.forward
        S4DKernel.forward = naive_kernel
        try:
            for batch in args.batches:
                seconds, rate = measure(PAPER, batch, args.device, max(1, args.steps - 1), args.bf16, 1)
                print(f"{'paper':10s} {'naive':9s} {batch:5d} {seconds:8.2f} {rate:10.2f}", flush=True)
        finally:
            S4DKernel.forward = fast


if __name__ == "__main__":
    main()
