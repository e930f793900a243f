"""EEGFoundation's masked-token objective (BERT's rule, as in its released pretraining).

Of the amplitude tokens of a sequence, each is selected with probability 0.15; a selected
token becomes [MASK] with probability 0.8, a random id of the whole vocabulary (0..2005, as
transformers' ``DataCollatorForLanguageModeling`` draws it) with 0.1, and stays as it is with 0.1.
Labels hold the original id at selected positions and -100 (ignored by the loss) everywhere
else. Special tokens ([CLS], [SEP], [PAD]) are never selected; the release pretrains on bare
amplitude ids (``MaskingCollator``), so there are none there. Every draw comes from an explicit
``torch.Generator``, so a batch is masked the same way whenever it is masked with the same seed.

Shape letters: B batch (channel windows), L samples, S sequence length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .tokenizer import MASK_ID, N_LEVELS, VOCAB_SIZE

IGNORE = -100  # the label cross-entropy skips


@dataclass
class MaskingConfig:
    probability: float = 0.15  # share of amplitude tokens selected
    mask_fraction: float = 0.8  # of the selected: -> [MASK]
    random_fraction: float = 0.1  # of the selected: -> a random id (the rest stay)


def mask_tokens(input_ids: torch.Tensor, generator: torch.Generator,
                config: MaskingConfig = MaskingConfig()) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, S] ids -> (masked inputs [B, S], labels [B, S])."""
    shape, device = input_ids.shape, input_ids.device
    maskable = input_ids < N_LEVELS  # amplitude tokens only
    selected = (torch.rand(shape, generator=generator, device=device) < config.probability) & maskable
    draw = torch.rand(shape, generator=generator, device=device)  # picks the fate of a selected token
    to_mask = selected & (draw < config.mask_fraction)
    to_random = selected & (draw >= config.mask_fraction) & (draw < config.mask_fraction + config.random_fraction)
    random_ids = torch.randint(0, VOCAB_SIZE, shape, generator=generator, device=device)
    inputs = torch.where(to_mask, torch.full_like(input_ids, MASK_ID), input_ids)
    inputs = torch.where(to_random, random_ids, inputs)
    return inputs, torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE))


class MaskingCollator:
    """Tokenize and mask single-channel windows: bare amplitude ids, as the release pretrains (its
    ``EEGData`` feeds the binned 2,000 samples without [CLS] or [SEP]; those frame a sequence only when
    embeddings are extracted).

    ``mask_batch(x, generator)`` is the step itself (the pretraining module calls it with a
    generator seeded by the step, so a resumed run masks as an uninterrupted one);
    calling the collator on a list of ``PretrainDataset`` items uses its own generator
    (a DataLoader's ``collate_fn``)."""

    def __init__(self, tokenizer, config: MaskingConfig | None = None, generator: torch.Generator | None = None):
        self.tokenizer = tokenizer
        self.config = config if config is not None else MaskingConfig()
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    def mask_batch(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """x [B, L] -> input_ids, attention_mask, labels [B, L]."""
        ids = self.tokenizer.encode(x)  # [B, L]
        inputs, labels = mask_tokens(ids, generator, self.config)
        return {"input_ids": inputs, "attention_mask": torch.ones_like(ids), "labels": labels}

    def __call__(self, items) -> dict[str, torch.Tensor]:
        x = torch.stack([torch.as_tensor(item[0]) for item in items])[:, 0]  # [B, 1, L] -> [B, L]
        batch = self.mask_batch(x, self.generator)
        batch["channel"] = torch.tensor([int(item[1]) for item in items])  # [B]
        return batch
