"""The image side of notebook 85, trained on images alone: the judge and the embedder, stage B
pretraining of the class-token generator, its layout ControlNet, and the two-stage baseline's
embedding-prompted generator; and the sampling of those generators from class or embedding
prompts.

Every loop takes the images as an :class:`ImageSet` and its settings as a :class:`Stage`, draws its
batches from the training images only (``train_images``, indices into ``images``) from generators
seeded by the stage's ``seed``, and returns :func:`.training.train`'s result. Nothing here sees EEG.

Shape letters: I images, B batch, H height, W width, G layout grid side, E embedding width,
T context tokens, X context width.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch

from ..core.runtime import seed_everything
from .generator import ClassTokenGenerator, degrade_layouts, diffusion_loss, freeze_for_eeg_finetuning
from .pipeline import ddim_sample
from .structure import BlockMeans
from .training import index_batches, loop, train
from .two_stage import EmbeddingPrompt


@dataclass(frozen=True)
class ImageSet:
    """The images a loop trains on: ``images`` [I, C, H, W], ``labels`` [I], the indices of the
    training images, and where a loop needs them, the structure codes [I, G, G] and the image
    embeddings [I, E]."""

    images: torch.Tensor
    labels: torch.Tensor
    train_images: torch.Tensor
    layouts: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None


@dataclass(frozen=True)
class Stage:
    """One training stage's settings: optimizer steps, images per step, peak learning rate, the seed
    of its batches and noise, and the share of null prompts (classifier-free guidance)."""

    steps: int
    batch: int
    lr: float
    seed: int
    cond_dropout: float = 0.0


def _prompts(labels: torch.Tensor, null_index: int, dropout: float, generator: torch.Generator) -> torch.Tensor:
    """The class of each image, replaced by the null prompt with probability ``dropout`` (for
    classifier-free guidance)."""
    dropped = torch.rand(len(labels), generator=generator, device=labels.device) < dropout
    return torch.where(dropped, null_index, labels)


def fit_image_model(model: torch.nn.Module, loss: Callable, data: ImageSet, stage: Stage) -> dict:
    """Train the judge or the embedder: ``loss(model, images [B, C, H, W], labels [B], generator)``
    on batches of training images (the generator seeds the augmentations)."""
    draw, g = index_batches(data.train_images, stage.batch, stage.seed), torch.Generator().manual_seed(stage.seed)
    return train(model.parameters(), lambda step: (loss(model, data.images[(idx := draw())], data.labels[idx], g), {}),
                 loop(stage.steps, stage.batch, stage.lr, warmup_steps=max(1, stage.steps // 10)))


def fit_class_token_generator(generator: ClassTokenGenerator, ddpm, data: ImageSet, stage: Stage,
                              ema_beta: float = 0.99, warmup_steps: int = 50) -> dict:
    """Stage B pretraining, our text-to-image stand-in: DDPM (epsilon target) on the training
    images with the learned prompt of each image's class as the context, the null prompt a
    ``cond_dropout`` share of the time. ``generator`` ends holding its EMA weights (what is
    sampled from)."""
    draw = index_batches(data.train_images, stage.batch, stage.seed)
    g = torch.Generator(device=data.images.device).manual_seed(stage.seed)

    def loss_fn(step):
        idx = draw()
        context = generator.class_context(_prompts(data.labels[idx], generator.null_index, stage.cond_dropout, g))
        return diffusion_loss(generator.unet, ddpm, data.images[idx], context, g), {}

    result = train(generator.parameters(), loss_fn,
                   loop(stage.steps, stage.batch, stage.lr, warmup_steps=min(warmup_steps, max(1, stage.steps // 2)),
                        ema_beta=ema_beta),
                   ema_model=generator, desc="stage B pretraining", log_every=25)
    if result["ema"] is not None:
        generator.load_state_dict(result["ema"].state_dict())
    return result


def fit_layout_controlnet(controlnet: torch.nn.Module, generator: ClassTokenGenerator, ddpm, data: ImageSet,
                          stage: Stage, structure: torch.nn.Module | None = None) -> dict:
    """A ControlNet learns to steer the frozen ``generator`` with the structure codes [I, G, G]
    (``data.layouts``) of the training images, degraded toward their mean (shrunk and noised, as
    EEG-predicted codes will be) and turned into maps by ``structure`` (:mod:`.structure`;
    default block means). Only the ControlNet trains."""
    images, layouts = data.images, data.layouts
    draw = index_batches(data.train_images, stage.batch, stage.seed)
    g = torch.Generator(device=images.device).manual_seed(stage.seed)
    cpu_g = torch.Generator().manual_seed(stage.seed)
    mean_layout = layouts[data.train_images].mean(dim=0)
    if structure is None:
        structure = BlockMeans(layouts.shape[-1], images.shape[-1])

    def loss_fn(step):
        idx = draw()
        with torch.no_grad():
            control = structure(degrade_layouts(layouts[idx], mean_layout, cpu_g))
        context = generator.class_context(_prompts(data.labels[idx], generator.null_index, stage.cond_dropout, g))
        return diffusion_loss(generator.unet, ddpm, images[idx], context, g, controlnet, control), {}

    return train(controlnet.parameters(), loss_fn,
                 loop(stage.steps, stage.batch, stage.lr, warmup_steps=min(10, max(1, stage.steps // 2))),
                 desc="ControlNet")


def fit_embedding_prompt(base: ClassTokenGenerator, ddpm, data: ImageSet,
                         stage: Stage) -> tuple[ClassTokenGenerator, EmbeddingPrompt]:
    """The two-stage baseline's generator: a copy of ``base`` (left untouched) frozen as for the
    EEG fine-tuning, with an :class:`EmbeddingPrompt` adapter from the image embedding [I, E] to
    its context, trained on the training images' true embeddings (``data.embeddings``, unCLIP-style).
    Returns (generator, adapter), both in eval mode."""
    images, embeddings = data.images, data.embeddings
    seed_everything(stage.seed)
    gen = copy.deepcopy(base).requires_grad_(False)
    freeze_for_eeg_finetuning(gen.unet)
    adapter = EmbeddingPrompt(embeddings.shape[1], gen.config.prompt_tokens, gen.config.context_dim).to(images.device)
    draw = index_batches(data.train_images, stage.batch, stage.seed)
    g = torch.Generator(device=images.device).manual_seed(stage.seed)

    def loss_fn(step):
        idx = draw()
        context = adapter(embeddings[idx])
        keep = torch.rand(len(idx), generator=g, device=images.device) >= stage.cond_dropout
        context = torch.where(keep[:, None, None], context, gen.null_context(len(idx), context.shape[1]))
        return diffusion_loss(gen.unet, ddpm, images[idx], context, g), {}

    trainable = list(adapter.parameters()) + [p for p in gen.unet.parameters() if p.requires_grad]
    train(trainable, loss_fn, loop(stage.steps, stage.batch, stage.lr, warmup_steps=min(5, max(1, stage.steps // 2))),
          desc="two-stage generator")
    return gen.eval(), adapter.eval()


@torch.no_grad()
def class_prompted(generator: ClassTokenGenerator, ddim, classes: torch.Tensor, guidance_scale: float, seed: int,
                   ddim_steps: int, controlnet=None, layouts: torch.Tensor | None = None,
                   structure: torch.nn.Module | None = None) -> torch.Tensor:
    """Images [B, C, H, W] drawn with the prompt of ``classes`` [B] (and, with a ControlNet, the
    structure codes [B, G, G] through it, made maps by ``structure``; default block means)."""
    size = generator.config.image_size
    if layouts is not None and structure is None:
        structure = BlockMeans(layouts.shape[-1], size)
    control = None if layouts is None else structure(layouts)
    return ddim_sample(generator.unet, ddim, generator.class_context(classes), generator.null_context(len(classes)),
                       guidance_scale, seed, size, ddim_steps, controlnet if control is not None else None, control)


@torch.no_grad()
def embedding_prompted(generator: ClassTokenGenerator, adapter: EmbeddingPrompt, ddim, embeddings: torch.Tensor,
                       guidance_scale: float, seed: int, ddim_steps: int) -> torch.Tensor:
    """Images [B, C, H, W] drawn with the adapter's context of ``embeddings`` [B, E] (true, predicted
    from EEG by ridge, or the contrastive EEG embedding)."""
    context = adapter(embeddings)
    return ddim_sample(generator.unet, ddim, context, generator.null_context(len(context), context.shape[1]),
                       guidance_scale, seed, generator.config.image_size, ddim_steps)
