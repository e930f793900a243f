"""The networks: S4D and its autograd kernels, the SSMDP denoiser and its diffusion schedules, the
Latent Fusion Transformer, EEGNet."""
