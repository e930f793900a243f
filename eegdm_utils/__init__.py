"""Support package for the EEGDM notebook collection: the logic the notebooks teach with.

Grouped by job; imports go one way, down this list (a module imports only from its own folder
and the folders above it), and no module imports the package inside a function:

- ``core``: what every layer uses and nothing of EEG: seeding, devices and progress bars
  (``runtime``), run-folder files (``files``), fingerprints (``identity``), classification
  metrics (``scoring``), saving figures (``figure_output``).
- ``data``: EEG in: EDF reading and writing, the TCP montage, recordings and labels,
  preprocessing, the window store, the simulated corpus, datasets for training, mu-law,
  spectra, real-EEG folders and folds, generated EEG as MNE objects.
- ``models``: the networks: S4D (with its autograd kernels), the SSMDP denoiser, the diffusion
  schedules, the Latent Fusion Transformer, EEGNet.
- ``train``: fitting them: the one optimiser and schedule settings type every fit takes
  (``OptimSettings``), the Lightning trainer, SSMDP pretraining, fine-tuning with early stopping,
  the recipes of the notebooks (``fit_lft``, ``fit_eegnet``), the latent cache.
- ``eval``: what the notebooks report: baselines and controls, the report and its claims,
  subject-level intervals, the paper's numbers (``paper``), ablations, scaling curves, real-EEG scoring,
  generation metrics, figures.
- ``foundation``: the EEGFoundation baseline (tokens, RoFormer, masked-token pretraining, its
  classifier), built on ``data``, ``models`` and ``train``.
- ``e2i``: EEG-to-image reconstruction (DreamDiffusion, the structure-guided model, their
  baselines), built on ``core`` and ``data``.
"""

__version__ = "0.1.0"
