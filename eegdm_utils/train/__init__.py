"""Fitting the networks: the Lightning trainer, SSMDP pretraining, fine-tuning with early stopping,
the notebooks' recipes, and the latent cache the LFT is trained on."""
