"""Support package for the EEGDM notebook collection.

The notebooks in ``notebooks/`` import from here: data simulation and preprocessing,
the S4D diffusion backbone, the Latent Fusion Transformer, training loops, metrics and
figure helpers. Each model idea lives in its own module.
"""

__version__ = "0.1.0"
