"""EEGFoundation, the "tokenize then mask" baseline (notebook 90): each EEG channel as a
sentence of discrete amplitude tokens, a RoFormer encoder pretrained on single channels by
masked-token prediction, and a classifier that attends over patches of each channel.

One module per idea:

- ``tokenizer``: the released per-window min-max tokenizer, an amplitude-aware one (fixed
  uV range, uniform or mu-law bins), special ids, [CLS] ids [SEP] framing, out-of-range rejection;
- ``collator``: the masked-token objective (15%, 80/10/10) with an explicit generator;
- ``model``: the RoFormer encoder (small default, ``paper_config``), per-channel [CLS]
  embeddings, the downstream head (``head="release"`` | ``"fusion"``);
- ``token_pretraining``: the Lightning module and loop of masked-token pretraining, the unigram baseline;
- ``classifier``: the classifier trained with the project's ``fit_classifier``.
"""
