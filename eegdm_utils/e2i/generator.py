"""Stage B of DreamDiffusion (Bai et al. 2023): the conditional image diffusion model.

Without pretrained Stable Diffusion weights, the stand-in for a pretrained text-to-image
model is a small diffusers ``UNet2DConditionModel`` trained here on the images alone,
conditioned by cross-attention on a learned table of class tokens (the "text prompt" of
each digit, plus a null prompt for classifier-free guidance). For EEG it is frozen except
its cross-attention layers and the norms in front of them (``attn2`` and ``norm2`` of every
transformer block), and fine-tuned with EEG tokens as the context. The structural branch of
SGDM is a diffusers ``ControlNetModel`` copied from the UNet's encoder half.

DDPM training (epsilon target), DDIM sampling; the noise schedulers are kept apart from the
model and the sampling loop is written out in notebook 85.

Shape letters: B batch, H height, W width, T context tokens, D context width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GeneratorConfig:
    image_size: int = 8
    image_channels: int = 1  # 1 grey, 3 RGB
    block_out_channels: tuple = (32, 64)
    layers_per_block: int = 1
    context_dim: int = 64  # cross_attention_dim: the width of every context token
    attention_head_dim: int = 8
    norm_num_groups: int = 8
    n_classes: int = 10
    prompt_tokens: int = 4  # tokens of each class "prompt"
    train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"


def build_unet(config: GeneratorConfig):
    from diffusers import UNet2DConditionModel

    levels = len(config.block_out_channels)
    # cross-attention below the full resolution only (cheap at 8x8 and 16x16)
    down = ("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (levels - 1)
    up = ("CrossAttnUpBlock2D",) * (levels - 1) + ("UpBlock2D",)
    return UNet2DConditionModel(
        sample_size=config.image_size, in_channels=config.image_channels, out_channels=config.image_channels, block_out_channels=tuple(config.block_out_channels),
        down_block_types=down, up_block_types=up, layers_per_block=config.layers_per_block,
        cross_attention_dim=config.context_dim, attention_head_dim=config.attention_head_dim,
        norm_num_groups=config.norm_num_groups)


class ClassTokenGenerator(nn.Module):
    """The UNet and its learned prompt table: one row of tokens per class, the last row null."""

    def __init__(self, config: GeneratorConfig, unet=None):
        """``unet``: a pretrained UNet to use instead of building one from ``config`` (the real-scale
        backend, :func:`eegdm_utils.e2i.sd_backend.sd_generator`)."""
        super().__init__()
        self.config = config
        self.unet = build_unet(config) if unet is None else unet
        self.prompts = nn.Parameter(0.5 * torch.randn(config.n_classes + 1, config.prompt_tokens, config.context_dim))

    @property
    def null_index(self) -> int:
        return self.config.n_classes

    def class_context(self, labels: torch.Tensor) -> torch.Tensor:
        """Prompt tokens of classes [B] -> [B, T, D] (label ``null_index`` gives the null prompt)."""
        return self.prompts[labels]

    def null_context(self, batch: int, length: int | None = None) -> torch.Tensor:
        """The null prompt [B, T, D], tiled to ``length`` tokens when given.

        Tiling leaves cross-attention unchanged (every key appears equally often, so the
        softmax weights keep their ratios) and lets conditional and null contexts of
        different lengths share one batch.
        """
        tokens = self.prompts[self.null_index]  # [T, D]
        if length is not None:
            if length % len(tokens):
                raise ValueError(f"a context of {length} tokens is not a multiple of the {len(tokens)} prompt tokens")
            tokens = tokens.repeat(length // len(tokens), 1)
        return tokens.expand(batch, -1, -1)

    def soft_prompt(self, class_probabilities: torch.Tensor) -> torch.Tensor:
        """Expected prompt under a class posterior [B, K] -> [B, T, D] (SGDM's semantic guidance)."""
        return torch.einsum("bk,ktd->btd", class_probabilities, self.prompts[: self.config.n_classes])


def make_schedulers(config: GeneratorConfig):
    """(DDPM scheduler for training, DDIM scheduler for sampling) with the same betas."""
    from diffusers import DDIMScheduler, DDPMScheduler

    ddpm = DDPMScheduler(num_train_timesteps=config.train_timesteps, beta_schedule=config.beta_schedule,
                         prediction_type="epsilon", clip_sample=True)
    ddim = DDIMScheduler.from_config(ddpm.config, set_alpha_to_one=True)
    return ddpm, ddim


def predict_noise(unet, noisy: torch.Tensor, t: torch.Tensor, context: torch.Tensor, controlnet=None,
                  control: torch.Tensor | None = None) -> torch.Tensor:
    """epsilon prediction [B, C, H, W]; with a ControlNet and its ``control`` input, the
    ControlNet's residuals are added to the UNet's."""
    residuals = {}
    if controlnet is not None and control is not None:
        down, mid = controlnet(noisy, t, encoder_hidden_states=context, controlnet_cond=control, return_dict=False)
        residuals = {"down_block_additional_residuals": down, "mid_block_additional_residual": mid}
    return unet(noisy, t, encoder_hidden_states=context, **residuals).sample


def diffusion_loss(unet, scheduler, images: torch.Tensor, context: torch.Tensor, generator: torch.Generator | None = None,
                   controlnet=None, control: torch.Tensor | None = None) -> torch.Tensor:
    """DDPM loss: noise the images at random steps, predict the noise, mean squared error."""
    noise = torch.randn(images.shape, generator=generator, device=images.device)  # [B, C, H, W]
    t = torch.randint(0, scheduler.config.num_train_timesteps, (len(images),), generator=generator,
                      device=images.device)  # [B]
    noisy = scheduler.add_noise(images, noise, t)
    return F.mse_loss(predict_noise(unet, noisy, t, context, controlnet, control), noise)


def is_cross_attention_parameter(name: str) -> bool:
    """Cross-attention (``attn2``) and the norm in front of it (``norm2``) of a transformer block.

    ResNet blocks also have a ``norm2``; only the ones inside ``transformer_blocks`` count.
    """
    return "transformer_blocks" in name and (".attn2." in name or ".norm2." in name)


def freeze_for_eeg_finetuning(unet) -> list[str]:
    """Freeze the UNet except its cross-attention and adjacent norms; return the trainable names."""
    trainable = []
    for name, parameter in unet.named_parameters():
        parameter.requires_grad_(is_cross_attention_parameter(name))
        if parameter.requires_grad:
            trainable.append(name)
    if not trainable:
        raise ValueError("the UNet has no cross-attention layers to fine-tune")
    return trainable


def make_controlnet(unet, conditioning_channels: int = 1):
    """A ControlNet copied from ``unet``'s encoder half, reading a layout at full image resolution.

    Its conditioning embedding keeps the resolution (one level, no stride) because the
    layout is given at the image size; its zero convolutions make it a no-op at the start.
    """
    from diffusers import ControlNetModel

    return ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16,),
                                     conditioning_channels=conditioning_channels)


def degrade_layouts(layouts: torch.Tensor, mean_layout: torch.Tensor, generator: torch.Generator,
                    noise: float = 0.15) -> torch.Tensor:
    """Layouts [B, G, G] shrunk toward the mean layout by a random factor and noised.

    The ControlNet learns on layouts of real images, but at test time it reads layouts
    predicted from EEG, which regress toward the mean and are noisy; training on degraded
    layouts prepares it for them.
    """
    keep = (0.3 + 0.7 * torch.rand(len(layouts), 1, 1, generator=generator)).to(layouts.device)  # [B, 1, 1]
    jitter = (noise * torch.randn(layouts.shape, generator=generator)).to(layouts.device)  # [B, G, G]
    return mean_layout + keep * (layouts - mean_layout) + jitter
