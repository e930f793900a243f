"""Step times of the EEG-to-image models (notebooks 80 and 85), as their loops run them:
masked-EEG pretraining, stage-B pretraining of the class-token UNet, EEG fine-tuning with and
without the ControlNet, and DDIM sampling with classifier-free guidance.

    .venv/bin/python benchmarks/e2i_steps.py                      # default configuration, 1 thread
    .venv/bin/python benchmarks/e2i_steps.py --threads 2          # compare thread counts
    .venv/bin/python benchmarks/e2i_steps.py --channels 32 64     # a wider UNet
    .venv/bin/python benchmarks/e2i_steps.py --device cuda

Numbers are printed, never asserted. On a shared machine they vary with the load.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from eegdm_utils.e2i.eeg_conditioning import ConditioningConfig, EEGConditioner
from eegdm_utils.e2i.generator import (ClassTokenGenerator, GeneratorConfig, diffusion_loss, freeze_for_eeg_finetuning,
                                       make_controlnet, make_schedulers, predict_noise)
from eegdm_utils.e2i.masked_eeg import MaskedEEGConfig, MaskedEEGModel


def timed(step, repeats: int) -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--image-size", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device, B = torch.device(args.device), args.batch

    encoder = MaskedEEGModel(MaskedEEGConfig()).to(device)
    eeg = torch.randn(128, 32, 128, device=device)
    optimizer = torch.optim.AdamW(encoder.parameters())

    def encoder_step():
        loss = encoder.masked_loss(eeg)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    config = GeneratorConfig(image_size=args.image_size, block_out_channels=tuple(args.channels))
    generator = ClassTokenGenerator(config).to(device)
    ddpm, ddim = make_schedulers(config)
    images = torch.randn(B, 1, args.image_size, args.image_size, device=device)
    labels = torch.randint(0, 10, (B,), device=device)
    gen_optimizer = torch.optim.AdamW(generator.parameters())

    def generator_step():
        loss = diffusion_loss(generator.unet, ddpm, images, generator.class_context(labels))
        gen_optimizer.zero_grad()
        loss.backward()
        gen_optimizer.step()

    controlnet = make_controlnet(generator.unet).to(device)
    freeze_for_eeg_finetuning(generator.unet)
    conditioner = EEGConditioner(MaskedEEGModel(MaskedEEGConfig()), ConditioningConfig(
        semantic=True, structural=True, image_size=args.image_size)).to(device)
    trial_batch = torch.randn(B, 32, 128, device=device)

    def finetune_step(with_controlnet: bool):
        readout = conditioner(trial_batch)
        context = conditioner.context(readout, generator)
        loss = diffusion_loss(generator.unet, ddpm, images, context, None,
                              controlnet if with_controlnet else None, conditioner.control(readout))
        loss.backward()

    @torch.no_grad()
    def sample_step(n: int = 256):
        x = torch.randn(n, 1, args.image_size, args.image_size, device=device)
        context, null = generator.class_context(labels[:1].expand(n)), generator.null_context(n)
        t = ddim.timesteps[0] if len(ddim.timesteps) else torch.tensor(500)
        eps = predict_noise(generator.unet, x, t, context)
        eps_uncond = predict_noise(generator.unet, x, t, null)
        return eps_uncond + 3.0 * (eps - eps_uncond)

    ddim.set_timesteps(10)
    print(f"threads {args.threads}, UNet channels {args.channels}, images {args.image_size}x{args.image_size}, "
          f"batch {B}, device {args.device}")
    print(f"masked-EEG pretraining step (batch 128)        {1000 * timed(encoder_step, args.repeats):7.1f} ms")
    print(f"stage-B pretraining step                       {1000 * timed(generator_step, args.repeats):7.1f} ms")
    print(f"EEG fine-tuning step, no ControlNet            {1000 * timed(lambda: finetune_step(False), args.repeats):7.1f} ms")
    print(f"EEG fine-tuning step, with ControlNet          {1000 * timed(lambda: finetune_step(True), args.repeats):7.1f} ms")
    per_step = timed(sample_step, args.repeats)
    print(f"one guided DDIM step for 256 images            {1000 * per_step:7.1f} ms "
          f"({256 / per_step:.0f} images/s per step)")


if __name__ == "__main__":
    main()
