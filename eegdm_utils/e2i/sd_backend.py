"""The real-scale image side: a Stable Diffusion pipeline and a CLIP image model read from local folders.

DreamDiffusion and the structure-guided model at real scale start from a pretrained latent diffusion
model (VAE + UNet with cross-attention + a noise scheduler) and align the EEG to a pretrained CLIP
image embedding. Both are read here from folders in the layouts ``save_pretrained`` writes
(diffusers: ``unet/``, ``vae/``, ``scheduler/``; transformers: a CLIP vision model with projection and
its image processor), with ``local_files_only``: nothing is ever downloaded, and a missing or malformed
folder is an error that names the folder and what it lacks before any weight is read.

:func:`write_tiny_sd` and :func:`write_tiny_clip` write pipelines of the same shapes with random
weights and a few thousand parameters, so that the whole real-scale path runs in tests and on a CPU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .generator import ClassTokenGenerator, GeneratorConfig

# what each part of a Stable Diffusion folder must hold (the weights in one of the two formats)
SD_PARTS = {"unet": "config.json", "vae": "config.json", "scheduler": "scheduler_config.json"}
DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
CLIP_FILES = ("config.json", "preprocessor_config.json")
TRANSFORMERS_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


class BackendError(ValueError):
    """A local model folder that cannot be used, with the folder and the reason in the message."""


def _config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BackendError(f"{path}: not a readable JSON configuration ({e})") from e
    if not isinstance(config, dict):
        raise BackendError(f"{path}: a configuration must be a JSON object")
    return config


def check_sd_folder(path: str | Path) -> Path:
    """``path`` as a Path if it holds a usable Stable Diffusion layout; else a :class:`BackendError`
    naming every part or file it lacks."""
    root = Path(path)
    if not str(path) or not root.is_dir():
        raise BackendError(f"e2i_sd_path {str(path)!r}: not a folder (a diffusers Stable Diffusion folder with "
                           f"{', '.join(p + '/' for p in SD_PARTS)})")
    missing = []
    for part, config in SD_PARTS.items():
        if not (root / part / config).exists():
            missing.append(f"{part}/{config}")
        elif part != "scheduler" and not any((root / part / w).exists() for w in DIFFUSERS_WEIGHTS):
            missing.append(f"{part}/{DIFFUSERS_WEIGHTS[0]} (or .bin)")
    if missing:
        raise BackendError(f"{root}: not a complete Stable Diffusion folder; missing {', '.join(missing)}")
    unet = _config(root / "unet" / "config.json")
    vae = _config(root / "vae" / "config.json")
    if "cross_attention_dim" not in unet:
        raise BackendError(f"{root / 'unet' / 'config.json'}: no cross_attention_dim (not a text-conditioned UNet)")
    if unet.get("in_channels") != vae.get("latent_channels"):
        raise BackendError(f"{root}: the UNet takes {unet.get('in_channels')} channels, the VAE's latents have "
                           f"{vae.get('latent_channels')}")
    return root


def check_clip_folder(path: str | Path) -> Path:
    """``path`` as a Path if it holds a CLIP vision model with projection and its image processor; else a
    :class:`BackendError` naming what it lacks."""
    root = Path(path)
    if not str(path) or not root.is_dir():
        raise BackendError(f"e2i_clip_path {str(path)!r}: not a folder (a transformers CLIP vision model with its "
                           "image processor)")
    missing = [f for f in CLIP_FILES if not (root / f).exists()]
    if not any((root / w).exists() for w in TRANSFORMERS_WEIGHTS):
        missing.append(f"{TRANSFORMERS_WEIGHTS[0]} (or .bin)")
    if missing:
        raise BackendError(f"{root}: not a CLIP image model folder; missing {', '.join(missing)}")
    config = _config(root / "config.json")
    if "projection_dim" not in config and "projection_dim" not in config.get("vision_config", {}):
        raise BackendError(f"{root / 'config.json'}: no projection_dim (a CLIP vision model with projection is needed)")
    return root


@dataclass
class StableDiffusion:
    """The parts of a latent diffusion model the EEG-to-image methods train and sample with."""

    unet: torch.nn.Module
    vae: torch.nn.Module
    scheduler: object

    @property
    def context_width(self) -> int:
        """The width of the UNet's cross-attention context (768 for SD 1.x)."""
        return int(self.unet.config.cross_attention_dim)

    @property
    def latent_scale(self) -> float:
        """The factor latents are multiplied by after encoding (0.18215 for SD 1.x)."""
        return float(getattr(self.vae.config, "scaling_factor", 0.18215))

    @property
    def image_size(self) -> int:
        """The image side the UNet was trained at: its sample size times the VAE's downsampling."""
        return int(self.unet.config.sample_size) * 2 ** (len(self.vae.config.block_out_channels) - 1)


def load_sd(path: str | Path, dtype: torch.dtype = torch.float32) -> StableDiffusion:
    """The UNet, VAE and scheduler of a local Stable Diffusion folder (:func:`check_sd_folder` first);
    frozen VAE in eval mode, the UNet as loaded (the caller decides what trains)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    root = check_sd_folder(path)
    try:
        unet = UNet2DConditionModel.from_pretrained(root, subfolder="unet", torch_dtype=dtype, local_files_only=True)
        vae = AutoencoderKL.from_pretrained(root, subfolder="vae", torch_dtype=dtype, local_files_only=True)
        scheduler = DDIMScheduler.from_pretrained(root, subfolder="scheduler", local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise BackendError(f"{root}: could not be read as a Stable Diffusion folder ({e})") from e
    return StableDiffusion(unet=unet, vae=vae.requires_grad_(False).eval(), scheduler=scheduler)


def load_clip(path: str | Path, dtype: torch.dtype = torch.float32):
    """(frozen CLIP vision model with projection, its image processor) from a local folder."""
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    root = check_clip_folder(path)
    try:
        model = CLIPVisionModelWithProjection.from_pretrained(root, torch_dtype=dtype, local_files_only=True)
        processor = CLIPImageProcessor.from_pretrained(root, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise BackendError(f"{root}: could not be read as a CLIP image model folder ({e})") from e
    return model.requires_grad_(False).eval(), processor


def write_tiny_sd(path: str | Path, image_size: int = 16, context_width: int = 32, seed: int = 0) -> Path:
    """A Stable-Diffusion-shaped folder with random weights (UNet with cross-attention, KL VAE, DDIM
    scheduler; a few thousand parameters each) at ``path``: the real-scale code path at test size."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    root = Path(path)
    torch.manual_seed(seed)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 8), latent_channels=4,
                        norm_num_groups=4, layers_per_block=1, sample_size=image_size)
    unet = UNet2DConditionModel(sample_size=image_size // 2, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(8, 16), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=context_width,
                                attention_head_dim=4, norm_num_groups=4)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False)
    vae.save_pretrained(root / "vae")
    unet.save_pretrained(root / "unet")
    scheduler.save_pretrained(root / "scheduler")
    return root


def write_tiny_clip(path: str | Path, image_size: int = 16, projection_dim: int = 16, seed: int = 0) -> Path:
    """A CLIP-vision-shaped folder with random weights and its image processor at ``path``."""
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    root = Path(path)
    torch.manual_seed(seed)
    config = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                              image_size=image_size, patch_size=8, projection_dim=projection_dim)
    CLIPVisionModelWithProjection(config).save_pretrained(root)
    CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
                       ).save_pretrained(root)
    return root


# ---------------------------------------------------------------- the latent-space image side

def to_sd_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """Images [I, C, H, W] in [-1, 1] (C = 1 grey or 3 RGB) as the VAE takes them: three channels at
    ``size`` x ``size`` (bilinear), still in [-1, 1]."""
    if images.shape[1] not in (1, 3):
        raise ValueError(f"images of {images.shape[1]} channels: expected 1 (grey) or 3 (RGB)")
    x = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
    if x.shape[-1] != size or x.shape[-2] != size:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.clamp(-1, 1)


@torch.no_grad()
def encode_latents(sd: StableDiffusion, images: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """The scaled VAE latents [I, 4, h, w] of images [I, C, H, W] in [-1, 1] (the posterior mean, so that a
    cached latent is a function of its image): what the diffusion loss of every method noises."""
    x = to_sd_images(images, sd.image_size)
    return torch.cat([sd.vae.encode(x[i:i + batch]).latent_dist.mean * sd.latent_scale
                      for i in range(0, len(x), batch)])


@torch.no_grad()
def decode_latents(sd: StableDiffusion, latents: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """Images [I, 3, H, W] in [-1, 1] of scaled latents [I, 4, h, w]."""
    return torch.cat([sd.vae.decode(latents[i:i + batch] / sd.latent_scale).sample
                      for i in range(0, len(latents), batch)]).clamp(-1, 1)


def sd_schedulers(sd: StableDiffusion):
    """(DDPM for training, DDIM for sampling) with the pretrained model's own noise schedule."""
    from diffusers import DDIMScheduler, DDPMScheduler

    ddpm = DDPMScheduler.from_config(sd.scheduler.config, prediction_type="epsilon", clip_sample=False)
    return ddpm, DDIMScheduler.from_config(ddpm.config)


def sd_generator(sd: StableDiffusion, n_classes: int, prompt_tokens: int = 4, seed: int = 0):
    """The pretrained UNet with a learned table of class prompts in its context space (one row of
    ``prompt_tokens`` tokens per class, the last row null): the class-token generator of the small
    backend (:class:`eegdm_utils.e2i.generator.ClassTokenGenerator`) on latents, so that every method,
    control and bound runs unchanged on it."""
    config = GeneratorConfig(image_size=int(sd.unet.config.sample_size), image_channels=int(sd.unet.config.in_channels),
                             context_dim=sd.context_width, n_classes=n_classes, prompt_tokens=prompt_tokens,
                             train_timesteps=int(sd.scheduler.config.num_train_timesteps))
    with torch.random.fork_rng(devices=[]):  # the prompt table from ``seed``, the caller's random state untouched
        torch.manual_seed(seed)
        return ClassTokenGenerator(config, unet=sd.unet)


@torch.no_grad()
def clip_image_embeddings(model, processor, images: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """CLIP's projected image embeddings [I, E] of images [I, C, H, W] in [-1, 1] (grey or RGB), each image
    through the processor as an 8-bit RGB picture: stage C's alignment targets at real scale."""
    pictures = ((to_sd_images(images, images.shape[-1]) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    pictures = pictures.permute(0, 2, 3, 1).cpu().numpy()  # [I, H, W, 3]
    out = []
    for i in range(0, len(pictures), batch):
        pixels = processor(images=list(pictures[i:i + batch]), return_tensors="pt")["pixel_values"]
        out.append(model(pixel_values=pixels.to(next(model.parameters()).dtype)).image_embeds.float())
    return torch.cat(out)
