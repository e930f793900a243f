"""Fitting the networks: the optimiser and schedule settings of every fit (``optim``), the Lightning trainer, SSMDP pretraining, fine-tuning with early stopping,
the notebooks' recipes, and the latent cache the LFT is trained on."""
