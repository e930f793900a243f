"""Our SSMDP training step against the reference's, timed in one run on this host.

    .venv/bin/pip install einops                       # the reference's model package imports it
    .venv/bin/python benchmarks/vs_reference.py --reference ~/src/EEGDM [--batches 8 32 64] [--rounds 2]

The reference is jhpuah/EEGDM (commit 976a5f4): its ``model.diffusion_model.Wavenet`` built
from its own ``conf/pretrain/base.yaml`` (the paper configuration: d_model 128, d_state 128,
20 blocks, bidirectional diagonal S4, its optimiser setup and DDPM schedule). Give the path
of a checkout kept outside this project: it is never committed and never downloaded here.

Three steps are timed, each (step, batch) in its own process, in interleaved rounds (round 1:
every step at every batch, then round 2 ...), with the same torch threads and the same malloc
setting (``runtime.keep_freed_memory``, unless ``--release-memory``):

- ``reference``: its Wavenet, forward, v-prediction MSE, backward, AdamW step (no EMA and no
  gradient clipping: those live in its Lightning module and trainer);
- ``ours as reference``: our SSMDP in the paper configuration, the same four things;
- ``ours``: our step as pretraining runs it (also clipping at 1.0 and the EMA update).

Each process builds its model, runs ``--warmup`` untimed steps, then ``--steps`` timed ones;
the table gives the median s/step over every timed step of every round, the spread (min to
max of the rounds' medians) and the ratio reference / ours. Then, per batch, one profiled step
of ours by operator group: the matrix products and FFTs that any implementation of this model
computes (the reference's included), and the ceiling they put on the ratio. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from eegdm_utils.core.runtime import cpu_model

STEPS = ("reference", "ours as reference", "ours")



def reference_step(root: Path, batch: int):
    """The reference's training step (see the module docstring), built from its own config."""
    import yaml
    from diffusers import DDPMScheduler

    sys.path.insert(0, str(root))
    try:
        from model.diffusion_model import Wavenet
        from model.util import setup_optimizer
    except ModuleNotFoundError as e:
        raise SystemExit(f"{root}: cannot import the reference's model package ({e}); "
                         "give the root of a jhpuah/EEGDM checkout, and `.venv/bin/pip install einops`") from None
    conf = yaml.safe_load((root / "conf" / "pretrain" / "base.yaml").read_text())["model"]
    torch.manual_seed(0)
    model = Wavenet(**conf["model_kwargs"])
    optimizer = setup_optimizer(model, lr=float(conf["opt_kwargs"]["lr"]),
                                weight_decay=float(conf["opt_kwargs"]["weight_decay"]))
    schedule = DDPMScheduler(**conf["noise_sch_kwargs"])
    x0 = torch.randn(batch, 1, 1000)
    channel = torch.randint(0, 22, (batch, 1))
    steps = schedule.config.num_train_timesteps

    def step():
        t = torch.randint(0, steps, (batch, 1))
        noise = torch.randn_like(x0)
        pred = model(schedule.add_noise(x0, noise, t), t, channel)
        loss = torch.nn.functional.mse_loss(pred, schedule.get_velocity(x0, noise, t))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def child(args) -> None:
    """One (step, batch) in this process: print {"times": [...]} as the last line."""
    from eegdm_utils.core.runtime import keep_freed_memory

    if not args.release_memory:
        keep_freed_memory()
    torch.set_num_threads(args.threads)
    if args.child == len(STEPS):  # where ours goes, by operator group (benchmarks/ssmdp_step.py)
        from ssmdp_step import PAPER, op_groups

        print(json.dumps({"groups": op_groups(PAPER, args.batch)}))
        return
    which = STEPS[args.child]
    if which == "reference":
        step = reference_step(Path(args.reference), args.batch)
    else:  # benchmarks/ssmdp_step.py's step, paper configuration
        from ssmdp_step import PAPER, make_step

        step = make_step(PAPER, args.batch, "cpu", False, clip_and_ema=which == "ours")
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"times": times}))


def run_one(args, which: int, batch: int) -> list[float] | dict:
    """One child process: its timed steps (s), or for the profile child its op groups (s)."""
    command = [sys.executable, __file__, "--child", str(which), "--batch", str(batch), "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--threads", str(args.threads), "--reference", str(args.reference)]
    if args.release_memory:
        command.append("--release-memory")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{(STEPS + ('profile',))[which]} at batch {batch} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result.get("times", result.get("groups"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help="root of a jhpuah/EEGDM checkout (976a5f4)")
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (each step and batch once per round)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per process")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per process first")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--release-memory", action="store_true", help="leave glibc's malloc at its defaults")
    parser.add_argument("--no-floor", action="store_true", help="skip the profile of the floor after the table")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return child(args)
    if not (args.reference / "model" / "diffusion_model.py").exists():
        raise SystemExit(f"{args.reference}: no model/diffusion_model.py; give the root of a jhpuah/EEGDM checkout")
    print(f"{cpu_model()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} threads, "
          f"{args.rounds} rounds x {args.steps} timed steps (after {args.warmup} untimed) per step and batch", flush=True)
    times = {(w, b): [] for w in range(len(STEPS)) for b in args.batches}
    for r in range(args.rounds):
        for batch in args.batches:
            for which in range(len(STEPS)):
                t = run_one(args, which, batch)
                times[(which, batch)].append(t)
                print(f"round {r + 1}: {STEPS[which]:18s} batch {batch:3d}: "
                      + " ".join(f"{s:.2f}" for s in t) + " s/step", flush=True)
    print(f"\n| batch | {' | '.join(STEPS)} | reference / ours as reference | reference / ours |")
    print("|---|---|---|---|---|---|")
    for batch in args.batches:
        medians = [statistics.median([s for run in times[(w, batch)] for s in run]) for w in range(len(STEPS))]
        spread = [(min(map(statistics.median, times[(w, batch)])), max(map(statistics.median, times[(w, batch)])))
                  for w in range(len(STEPS))]
        cells = [f"{m:.2f} ({lo:.2f}-{hi:.2f})" for m, (lo, hi) in zip(medians, spread)]
        print(f"| {batch} | {' | '.join(cells)} | {medians[0] / medians[1]:.1f}x | {medians[0] / medians[2]:.1f}x |")
    print("s/step: median over every timed step (min-max of the rounds' medians)")
    if args.no_floor:
        return
    print("\nThe floor: one profiled step of ours as reference (profiler self times, which run above the timed"
          " steps), by operator group; 'ceiling' is the reference's median over our matrix products and FFTs alone,"
          " the largest ratio any rewrite of the rest of our step could reach.")
    print("\n| batch | matrix products (s) | FFTs (s) | everything else (s) | profiled step (s) | ceiling |")
    print("|---|---|---|---|---|---|")
    for batch in args.batches:
        g = run_one(args, len(STEPS), batch)
        reference = statistics.median([s for run in times[(0, batch)] for s in run])
        floor = g["matrix products"] + g["FFTs"]
        print(f"| {batch} | {g['matrix products']:.2f} | {g['FFTs']:.2f} | {g['everything else']:.2f} | "
              f"{g['total']:.2f} | {reference / floor:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
