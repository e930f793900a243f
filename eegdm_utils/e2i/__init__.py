"""EEG-to-image reconstruction (notebooks 80 and 85): paired stimulus-EEG data, a
masked-signal-modelling EEG encoder (DreamDiffusion, Bai et al. 2023), a small
conditional image diffusion model fine-tuned on EEG, an image-embedding alignment, the
structure guidance of SGDM, baselines and the identification metrics.

One module per idea:

- ``stimuli``: the images (scikit-learn digits), splits by image, coarse layouts;
- ``visual_eeg``: simulated visual evoked EEG for each shown image, the block-design switch;
- ``paired_data``: the paired stimulus-EEG dataset on disk (written by 80, read by 85);
- ``masked_eeg``: stage A, the masked-signal-modelling EEG encoder;
- ``image_models``: the judge classifier and the contrastive image embedder (CLIP stand-in);
- ``generator``: stage B, the class-token UNet, freezing, ControlNet, DDPM training;
- ``eeg_conditioning``: stages B/C on the EEG side and SGDM's semantic and structural guidance;
- ``two_stage``: the two-stage baseline (ridge regression to the image embedding, then the generator);
- ``metrics``: n-way identification, 2-way in feature space, PixCorr, SSIM, Frechet distance;
- ``training``: the small training loop and checkpoints shared by all of them;
- ``plots``: figures.
"""
