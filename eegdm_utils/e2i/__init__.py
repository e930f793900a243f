"""EEG-to-image reconstruction (notebooks 80 and 85): paired stimulus-EEG data, a
masked-signal-modelling EEG encoder (DreamDiffusion, Bai et al. 2023), a small
conditional image diffusion model fine-tuned on EEG, an image-embedding alignment, the
structure guidance of SGDM, baselines and the identification metrics.

One module per idea:

- ``stimuli``: the images (scikit-learn digits), splits by image;
- ``structure``: the structure code of an image (block means, or a structurally supervised autoencoder);
- ``visual_eeg``: simulated visual evoked EEG computed from the pixels (never the label), the block-design switch;
- ``paired_data``: the paired stimulus-EEG dataset on disk (written by 80, read by 85);
- ``masked_eeg``: stage A, the masked-signal-modelling EEG encoder;
- ``image_models``: the judge classifier and the contrastive image embedder (CLIP stand-in);
- ``generator``: stage B, the class-token UNet, freezing, ControlNet, DDPM training;
- ``image_side``: the loops of notebook 85 that see images only (judge, embedder, stage-B pretraining,
  the layout ControlNet, the two-stage generator) and sampling from class or embedding prompts;
- ``eeg_conditioning``: stages B/C on the EEG side and SGDM's semantic and structural guidance;
- ``pipeline``: stages B/C on EEG (notebook 85): the methods, their loss, warm-up and fine-tuning,
  DDIM sampling with classifier-free guidance, reconstruction from EEG trials;
- ``study``: notebook 85's experiment as one object: the image side built once, the methods, baselines
  and controls over seeds, the table, the zero-shot section, the ablations and the metrics record;
- ``two_stage``: the two-stage baseline (ridge regression to the image embedding, then the generator);
- ``metrics``: n-way identification, 2-way in feature space (also within class and in the embedder's
  features), PixCorr, SSIM, Frechet distance, test-set sampling errors;
- ``things_eeg2``: the THINGS-EEG2 preprocessed release written as a paired dataset (real data);
- ``training``: the small training loop and checkpoints shared by all of them;
- ``plots``: figures.
"""
