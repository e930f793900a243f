"""Stages B and C on EEG (notebook 85): the methods, their loss, the warm-up and fine-tuning
loops, DDIM sampling with classifier-free guidance, and reconstruction from EEG trials.

Everything a step needs is passed in: the paired data as tensors on the model's device
(:class:`PairedTensors`), the pretrained image side (:class:`ImageSide`: the class-token
generator, its ControlNet and the schedulers) and the settings (:class:`FinetuneSettings`).

The loss of a batch (each term only when the method has it; the warm-up has no diffusion term):

    diffusion + align_weight * (1 - cos) + semantic_weight * CE(class) + layout_weight * MSE(layout)

(with ``Method.contrastive``, InfoNCE over the batch takes the place of 1 - cos).

Shape letters: B batch, N trials, C channels, L samples, I images, H height, W width, G layout
grid side, T context tokens, X context width, E image-embedding width.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.runtime import seed_everything
from .eeg_conditioning import EEGConditioner, alignment_loss, contrastive_alignment_loss
from .generator import ClassTokenGenerator, freeze_for_eeg_finetuning, predict_noise
from .training import index_batches, loop, save_checkpoint, train


@dataclass
class PairedTensors:
    """The paired data on the model's device."""

    images: torch.Tensor  # [I, C, H, W] in [-1, 1] (C = 1 grey, 3 RGB)
    labels: torch.Tensor  # [I]
    layouts: torch.Tensor  # [I, G, G] the structure code the structural branch predicts (eegdm_utils.e2i.structure)
    image_embeddings: torch.Tensor  # [I, E] frozen targets of the alignment
    eeg: torch.Tensor  # [N, C, L]
    trial_image: torch.Tensor  # [N] image of each trial

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]


@dataclass
class ImageSide:
    """The pretrained, frozen image side that every method starts from."""

    generator: ClassTokenGenerator
    controlnet: nn.Module  # pretrained on layouts of real images
    ddpm: object  # diffusers DDPMScheduler (training)
    ddim: object  # diffusers DDIMScheduler (sampling)


@dataclass
class FinetuneSettings:
    head_steps: int = 200  # EEG-only warm-up steps
    head_batch: int = 128
    steps: int = 80  # joint fine-tuning steps with the diffusion loss
    batch: int = 64
    lr: float = 1.0e-3
    align_weight: float = 1.0
    semantic_weight: float = 0.5
    layout_weight: float = 1.0
    cond_dropout: float = 0.1  # condition dropout (classifier-free guidance)
    temperature: float = 0.1  # of the contrastive alignment (InfoNCE)


@dataclass(frozen=True)
class Method:
    name: str
    eeg_tokens: bool = True  # DreamDiffusion: EEG tokens as cross-attention context
    semantic: bool = False  # SGDM semantic guidance (soft class prompt)
    structural: bool = False  # SGDM structural guidance (layout through the ControlNet)
    align: bool = True  # stage C alignment
    contrastive: bool = False  # align with InfoNCE over the batch (SGDM) instead of 1 - cosine (DreamDiffusion)
    pretrained: bool = True  # stage A encoder (else the same encoder, untrained)
    mask_ratio: float = 0.75


class EEGToImage(nn.Module):
    """A copy of the pretrained generator (frozen but for its cross-attention), the EEG
    conditioner and, for structural guidance, a trainable copy of the ControlNet."""

    def __init__(self, method: Method, conditioner: EEGConditioner, image_side: ImageSide):
        super().__init__()
        self.method = method
        self.generator = copy.deepcopy(image_side.generator).requires_grad_(False)
        self.trainable_unet = freeze_for_eeg_finetuning(self.generator.unet)
        self.conditioner = copy.deepcopy(conditioner)
        self.conditioner.config = replace(conditioner.config, eeg_tokens=method.eeg_tokens, semantic=method.semantic,
                                          structural=method.structural)
        self.controlnet = copy.deepcopy(image_side.controlnet).requires_grad_(True) if method.structural else None
        self.temperature = 1.0  # of the class posterior; chosen on validation


def finetune_loss(model: EEGToImage, data: PairedTensors, trials: torch.Tensor, ddpm, settings: FinetuneSettings,
                  generator: torch.Generator, with_diffusion: bool, guidance_heads: bool = False):
    """(total loss, {part: detached value}) of one batch of ``trials`` [B]."""
    idx = data.trial_image[trials]
    readout = model.conditioner(data.eeg[trials])
    losses = {}
    if model.method.align and model.method.contrastive:  # SGDM: InfoNCE, other images of the batch as negatives
        losses["align"] = contrastive_alignment_loss(readout.image_embedding, data.image_embeddings[idx], idx,
                                                     settings.temperature)
    elif model.method.align:
        losses["align"] = alignment_loss(readout.image_embedding, data.image_embeddings[idx])  # stage C
    if model.method.semantic or guidance_heads:
        losses["semantic"] = F.cross_entropy(readout.class_logits, data.labels[idx])  # class posterior
    if model.method.structural or guidance_heads:
        losses["layout"] = F.mse_loss(readout.layout, data.layouts[idx])  # coarse layout
    if with_diffusion:
        x0 = data.images[idx]
        context = model.conditioner.context(readout, model.generator)  # [B, T, X]
        keep = torch.rand(len(idx), generator=generator, device=x0.device) >= settings.cond_dropout
        context = torch.where(keep[:, None, None], context, model.generator.null_context(len(idx), context.shape[1]))
        noise = torch.randn(x0.shape, generator=generator, device=x0.device)
        t = torch.randint(0, ddpm.config.num_train_timesteps, (len(idx),), generator=generator, device=x0.device)
        noisy = ddpm.add_noise(x0, noise, t)  # q(x_t | x_0)
        # the layout stays on when the context is dropped, as in ControlNet training: guidance then
        # amplifies the semantic direction, and the structure constrains both branches
        predicted = predict_noise(model.generator.unet, noisy, t, context, model.controlnet,
                                  model.conditioner.control(readout))
        losses["diffusion"] = F.mse_loss(predicted, noise)  # the target is the added noise
    weights = {"diffusion": 1.0, "align": settings.align_weight, "semantic": settings.semantic_weight,
               "layout": settings.layout_weight}
    total = sum(weights[k] * v for k, v in losses.items())
    return total, {k: v.detach() for k, v in losses.items()}


def warm_up(variant: Method, make_conditioner, data: PairedTensors, train_trials: torch.Tensor,
            image_side: ImageSide, settings: FinetuneSettings, seed: int) -> EEGConditioner:
    """The EEG side alone (no UNet): the encoder, the alignment head (if the variant aligns)
    and both guidance heads, trained on ``train_trials``. ``make_conditioner(variant)`` builds
    the conditioner after seeding, so its heads' initial weights depend on ``seed`` only.
    Returns the trained conditioner."""
    seed_everything(seed)
    holder = EEGToImage(replace(variant, eeg_tokens=True, semantic=False, structural=False), make_conditioner(variant),
                        image_side)
    draw = index_batches(train_trials, settings.head_batch, seed)
    g = torch.Generator(device=data.eeg.device).manual_seed(seed)
    train(holder.conditioner.parameters(),
          lambda step: finetune_loss(holder, data, draw(), image_side.ddpm, settings, g, False, guidance_heads=True),
          loop(settings.head_steps, settings.head_batch, settings.lr, warmup_steps=10),
          desc="EEG heads")
    return holder.conditioner


def finetune(method: Method, conditioner: EEGConditioner, data: PairedTensors, train_trials: torch.Tensor,
             image_side: ImageSide, settings: FinetuneSettings, seed: int, *, checkpoint_dir: Path | None = None,
             steps: int | None = None, checkpoint_extra: dict | None = None, evaluate=None,
             evaluate_at=()) -> EEGToImage:
    """Joint fine-tuning with the diffusion loss for ``steps`` (default ``settings.steps``).
    The trainable part is saved to ``checkpoint_dir/<method>_seed<seed>.pt`` when given (with
    ``checkpoint_extra`` beside the seed); the model's ``history`` holds the loss parts per
    logged step. ``evaluate(model, n)`` runs after ``n`` steps for each ``n`` in ``evaluate_at``
    (in eval mode, training resumes after); the results are the model's ``evaluations``."""
    steps = settings.steps if steps is None else steps
    seed_everything(seed)
    model = EEGToImage(method, conditioner, image_side).to(data.eeg.device)
    draw = index_batches(train_trials, settings.batch, seed + 1)
    g = torch.Generator(device=data.eeg.device).manual_seed(seed + 1)

    def evaluated(n: int) -> dict:
        model.eval()
        try:
            return evaluate(model, n)
        finally:
            model.train()

    result = train([p for p in model.parameters() if p.requires_grad],
                   lambda step: finetune_loss(model, data, draw(), image_side.ddpm, settings, g, True),
                   loop(steps, settings.batch, settings.lr, warmup_steps=max(1, steps // 10)),
                   desc=method.name, evaluate=evaluated if evaluate else None, evaluate_at=evaluate_at)
    model.history, model.evaluations = result["history"], result["evaluations"]
    if checkpoint_dir is not None:
        trainable = {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}
        save_checkpoint(Path(checkpoint_dir) / f"{method.name.replace(' ', '_')}_seed{seed}.pt", method, steps,
                        {"trainable": trainable}, result["history"],  # weights only: nothing resumes from it
                        {"seed": seed, **(checkpoint_extra or {})})
    return model.eval()


@torch.no_grad()
def context_loss_gap(model: EEGToImage, data: PairedTensors, trials: torch.Tensor, ddpm, seed: int) -> dict[str, float]:
    """The diffusion loss of ``trials`` with their EEG context and with the null context, on the
    same noise and steps (drawn from ``seed``): ``eeg``, ``null`` and ``gap`` = null - eeg. A
    positive gap means the EEG context tells the generator something about the image."""
    idx = data.trial_image[trials]
    x0 = data.images[idx]
    g = torch.Generator(device=x0.device).manual_seed(seed)
    noise = torch.randn(x0.shape, generator=g, device=x0.device)
    t = torch.randint(0, ddpm.config.num_train_timesteps, (len(idx),), generator=g, device=x0.device)
    noisy = ddpm.add_noise(x0, noise, t)
    readout = model.conditioner(data.eeg[trials])
    context = model.conditioner.context(readout, model.generator, True, model.temperature)
    control = model.conditioner.control(readout)
    losses = {}
    for name, c in (("eeg", context), ("null", model.generator.null_context(len(idx), context.shape[1]))):
        losses[name] = float(F.mse_loss(predict_noise(model.generator.unet, noisy, t, c, model.controlnet, control), noise))
    return {**losses, "gap": losses["null"] - losses["eeg"]}


@torch.no_grad()
def ddim_sample(unet, ddim, context: torch.Tensor, null_context: torch.Tensor, guidance_scale: float, seed: int,
                image_size: int, steps: int, controlnet=None, control: torch.Tensor | None = None,
                batch: int = 512) -> torch.Tensor:
    """Images [B, C, H, W] in [-1, 1] for contexts [B, T, X] (and ControlNet inputs [B, 1, H, W]),
    ``batch`` images at a time (the conditional and the null prompt go through the UNet together).

    DDIM with classifier-free guidance, ``guided = uncond + scale * (cond - uncond)``: the null
    context gives the unconditional prediction, scale 1 is plain conditional sampling. A layout,
    when there is one, goes through the ControlNet in both branches (as in diffusers' ControlNet
    pipelines), so guidance amplifies what the context adds. The start noise x_T depends on
    ``seed`` only."""
    device = context.device
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn((len(context), unet.config.in_channels, image_size, image_size), generator=g, device=device)  # x_T
    ddim.set_timesteps(steps)
    out = []
    for b in range(0, len(x), batch):
        xb, cb, nb = x[b:b + batch], context[b:b + batch], null_context[b:b + batch]
        kb = None if control is None else control[b:b + batch]
        guided = guidance_scale != 1.0
        together = guided and cb.shape == nb.shape  # the conditional and the null prompt in one UNet call
        for t in ddim.timesteps:
            if together:
                eps, eps_uncond = predict_noise(unet, torch.cat([xb, xb]), t, torch.cat([cb, nb]), controlnet,
                                                None if kb is None else torch.cat([kb, kb])).chunk(2)
            else:
                eps = predict_noise(unet, xb, t, cb, controlnet, kb)  # conditional
                eps_uncond = predict_noise(unet, xb, t, nb, controlnet, kb) if guided else None  # the layout stays
            if guided:
                eps = eps_uncond + guidance_scale * (eps - eps_uncond)
            xb = ddim.step(eps, t, xb).prev_sample  # x_{t-1}
        out.append(xb)
    return torch.cat(out).clamp(-1, 1)


@torch.no_grad()
def reconstruct(model: EEGToImage, data: PairedTensors, trials, guidance_scale: float, seed: int, ddim, steps: int,
                semantic: bool = True, structural: bool = True, repeats: int = 1) -> torch.Tensor:
    """Images [len(trials) * repeats, C, H, W] from EEG ``trials`` (``repeats`` samples each, in a row);
    ``semantic`` / ``structural`` False switch a guidance branch off at sampling time."""
    readout = model.conditioner(data.eeg[torch.as_tensor(trials, device=data.eeg.device)])
    context = model.conditioner.context(readout, model.generator, semantic, model.temperature)
    control = model.conditioner.control(readout) if structural else None
    if repeats > 1:
        context = context.repeat_interleave(repeats, 0)
        control = None if control is None else control.repeat_interleave(repeats, 0)
    null = model.generator.null_context(len(context), context.shape[1])
    return ddim_sample(model.generator.unet, ddim, context, null, guidance_scale, seed, data.image_size, steps,
                       model.controlnet, control)
