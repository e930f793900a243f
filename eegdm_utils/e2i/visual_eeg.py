"""Simulated visual evoked EEG for each shown image: the EEG half of the paired
stimulus-EEG data (a stand-in for datasets such as EEG-ImageNet or THINGS-EEG).

The simulated brain never sees a label. It sees pixels, through a fixed random two-layer
convolutional network (the same for every subject: a stand-in for the visual hierarchy), and
every stimulus-locked source is driven by what that network computes:

- **retinotopic low-level sources** at ~80 ms (C1-like): local contrast energy (rectified
  responses of zero-mean 3x3 filters) pooled in Gaussian receptive fields scattered over the
  visual field; a field in the right visual field drives the left occipital cortex, its
  polarity flips between the upper and lower field;
- **the P100, N170 and P300**, with fixed topographies and latencies, whose amplitudes follow
  the image: the P100 its overall contrast energy, the N170 and the P300 two random
  directions of the network's second-layer features;
- **image-specific spatio-temporal patterns** (120-260 ms): random projections of the
  second-layer features (global and per-quadrant averages of rectified responses), each with
  its own posterior topography and latency.

Category effects therefore arise only through visual similarity: two images of one digit
class evoke similar EEG because they look alike. Around that:

- latency jitter (shared by the components of a trial) and amplitude jitter;
- background EEG: 1/f^exponent activity correlated by electrode distance, a posterior
  alpha rhythm with random phase, sensor noise;
- a slow state shared by consecutive trials (electrode offsets and drifts). In the default
  randomised design the images are shown in random order, so the state carries no
  stimulus information. ``block_design=True`` shows the images in class blocks, as in the
  EEG-ImageNet recordings: the state is then confounded with the class, and a random-trial
  split can decode it without any stimulus information (see :func:`block_design_check`).

Each subject sees the stimulus-locked sources through their own mixing (a spatially
smooth perturbation of the scalp fields and per-channel gains), latency offset, gain,
noise colour and alpha frequency. The same configuration gives the same trials.

Shape letters: N trials, C channels (32), L samples (128), K ERP components, J image
components, R receptive fields, F visual features, I images.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..data.simulate import colored_noise

CHANNEL_NAMES: tuple[str, ...] = (
    "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "FC5", "FC1", "FC2", "FC6", "T7", "C3", "Cz", "C4", "T8",
    "CP5", "CP1", "CP2", "CP6", "P7", "P3", "Pz", "P4", "P8", "PO7", "PO3", "PO4", "PO8", "O1", "Oz", "O2",
)
# (name, centre electrodes, spatial width (m), latency (s), rise, fall (s), polarity)
ERP_COMPONENTS = (
    ("P100", ("O1", "Oz", "O2"), 0.035, 0.100, 0.015, 0.020, +1.0),
    ("N170", ("P7", "PO7", "P8", "PO8"), 0.035, 0.170, 0.020, 0.030, -1.0),
    ("P300", ("Pz", "CP1", "CP2"), 0.060, 0.300, 0.050, 0.080, +1.0),
)
RETINA = 8  # the simulated visual system sees every image at 8 x 8 (larger images are block-averaged)


@dataclass
class VisualEEGConfig:
    """The paired recording: who sees what, and how strong each part of the signal is."""

    sfreq: int = 256
    n_samples: int = 128  # 0.5 s after the image onset
    n_subjects: int = 4  # paired subjects: they see every image (train, val and test)
    n_pretrain_subjects: int = 4  # other subjects, unlabeled, for stage A: they see training images only
    repetitions: int = 2  # sessions per subject; each shows every image once
    n_filters: int = 8  # first-layer filters of the random visual network
    n_features: int = 16  # second-layer channels (features: their global and per-quadrant averages)
    n_image_components: int = 12  # random projections of the features that drive image-specific sources
    n_receptive_fields: int = 12  # retinotopic contrast-energy sources
    erp_uv: float = 3.0  # P100 / N170 / P300 amplitude for an average image (microvolts)
    erp_modulation: float = 0.35  # relative change of those amplitudes per standard deviation of their visual drive
    image_uv: float = 1.5  # image-specific term per standard deviation of a component score
    retinotopic_uv: float = 1.5  # retinotopic term per standard deviation of a receptive field's contrast energy
    latency_jitter_s: float = 0.012
    amplitude_jitter: float = 0.25  # log-normal sigma of the per-trial gain
    background_uv: float = 5.5  # 1/f background (calibrated with the gains above: a linear decoder gets ~22%
    # of single trials right over 10 classes, ~34% after averaging 4 repetitions)
    alpha_uv: float = 4.5  # posterior alpha rhythm
    sensor_uv: float = 1.5  # white sensor noise
    slow_state_uv: float = 6.0  # offsets/drifts shared by the trials of one state (block)
    trials_per_state: int = 40  # randomised design: consecutive trials sharing a slow state
    subject_mixing: float = 0.3  # strength of each subject's own perturbation of the scalp fields
    stimulus_gain: float = 1.0  # 0 removes every stimulus-locked signal (the block-design check)
    block_design: bool = False  # show the images in class blocks (the EEG-ImageNet pitfall)
    seed: int = 0

    @property
    def n_channels(self) -> int:
        return len(CHANNEL_NAMES)


@dataclass
class VisualEEG:
    """Trials and their table. ``eeg`` is in microvolts."""

    eeg: np.ndarray  # [N, C, L] float32
    image: np.ndarray  # [N] index into the image array
    label: np.ndarray  # [N] class of the image (for the table and the block design; the EEG never reads it)
    subject: np.ndarray  # [N]
    session: np.ndarray  # [N] global session id (subject x repetition)
    state: np.ndarray  # [N] global slow-state (block) id
    position: np.ndarray  # [N] presentation position within the session
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.eeg)

    def table(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in ("image", "label", "subject", "session", "state", "position")}

    def subset(self, keep: np.ndarray) -> "VisualEEG":
        """The trials selected by ``keep`` (a boolean mask [N] or indices), with the same meta."""
        return VisualEEG(self.eeg[keep], **{k: v[keep] for k, v in self.table().items()}, meta=self.meta)


# ----------------------------------------------------------------------------- geometry


@lru_cache(maxsize=1)
def electrode_positions() -> np.ndarray:
    """3-D positions [C, 3] (m) of the 32 channels, from MNE's ``standard_1020`` montage."""
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        montage = mne.channels.make_standard_montage("standard_1020")
    pos = montage.get_positions()["ch_pos"]
    return np.stack([np.asarray(pos[name]) for name in CHANNEL_NAMES])


def _position(name: str) -> np.ndarray:
    return electrode_positions()[CHANNEL_NAMES.index(name)]


def _field(center: np.ndarray, sigma: float) -> np.ndarray:
    """Scalp weights [C] of a source at ``center`` spreading with width ``sigma``."""
    d2 = ((electrode_positions() - center) ** 2).sum(-1)
    return np.exp(-d2 / (2 * sigma**2))


def _smooth_random_fields(rng, n: int, length: float = 0.05) -> np.ndarray:
    """Spatially smooth random fields [n, C] with unit standard deviation."""
    xyz = electrode_positions()
    cov = np.exp(-np.linalg.norm(xyz[:, None] - xyz[None], axis=-1) / length)  # [C, C]
    fields = rng.standard_normal((n, len(xyz))) @ np.linalg.cholesky(cov + 1e-6 * np.eye(len(xyz))).T
    return fields / fields.std(axis=1, keepdims=True)


def _bumps(t: np.ndarray, center: np.ndarray, rise: float | np.ndarray, fall: float | np.ndarray) -> np.ndarray:
    """Asymmetric Gaussian bumps: ``center`` [...] (s) -> [..., L]."""
    d = t - center[..., None]
    rise = np.asarray(rise)[..., None] if np.ndim(rise) else rise
    fall = np.asarray(fall)[..., None] if np.ndim(fall) else fall
    return np.exp(-0.5 * (d / np.where(d < 0, rise, fall)) ** 2)


# ----------------------------------------------------------------------------- the visual system


@dataclass
class VisualSystem:
    """The fixed random network that turns pixels into source drives (seeded by ``config.seed``)."""

    filters1: np.ndarray  # [F1, 1, 3, 3] zero-mean, unit-norm: local contrast, no luminance
    filters2: np.ndarray  # [F2, F1, 3, 3]
    receptive_fields: np.ndarray  # [R, RETINA, RETINA] Gaussian windows (sum 1)
    centers: np.ndarray  # [R, 2] (x, y) in the visual field, -1..1 (right, up)
    projection: np.ndarray  # [5 * F2, J] feature -> image component
    erp_directions: np.ndarray  # [5 * F2, 2] feature directions of the N170 and P300 amplitudes
    stats: dict = field(default_factory=dict)  # mean and std of every drive over the images it was fitted on


def _retina(images: np.ndarray) -> np.ndarray:
    """[I, H, W] -> [I, RETINA, RETINA] by block averaging (H and W multiples of RETINA)."""
    n, h, w = images.shape
    if h % RETINA or w % RETINA:
        raise ValueError(f"image size {h}x{w} must be a multiple of {RETINA}")
    return images.reshape(n, RETINA, h // RETINA, RETINA, w // RETINA).mean(axis=(2, 4))


def _raw_drives(images: np.ndarray, system: VisualSystem) -> dict[str, np.ndarray]:
    """Unstandardised drives: contrast energy per receptive field [I, R], overall [I], features [I, 5 F2]."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(_retina(np.asarray(images, dtype=np.float64)))[:, None]  # [I, 1, 8, 8]
    energy = F.relu(F.conv2d(x, torch.from_numpy(system.filters1), padding=1))  # [I, F1, 8, 8]
    local = energy.sum(1).numpy()  # [I, 8, 8] contrast energy map
    hidden = F.relu(F.conv2d(F.avg_pool2d(energy, 2), torch.from_numpy(system.filters2), padding=1))  # [I, F2, 4, 4]
    quadrants = F.avg_pool2d(hidden, 2).flatten(1)  # [I, F2 * 4]
    features = torch.cat([hidden.mean((2, 3)), quadrants], dim=1).numpy()  # [I, 5 F2]
    return {"contrast": np.einsum("ihw,rhw->ir", local, system.receptive_fields), "overall": local.mean((1, 2)),
            "features": features}


def make_visual_system(images: np.ndarray, config: VisualEEGConfig) -> VisualSystem:
    """The random network, and the mean and spread of its drives over ``images``.

    The statistics are those of all images: they belong to the simulated brain (adapted to
    its visual world), not to any model, so no split is involved and no label is read.
    """
    rng = np.random.default_rng([config.seed, 21])
    F1, F2, R = config.n_filters, config.n_features, config.n_receptive_fields
    filters1 = rng.standard_normal((F1, 1, 3, 3))
    filters1 -= filters1.mean(axis=(2, 3), keepdims=True)
    filters1 /= np.linalg.norm(filters1.reshape(F1, -1), axis=1)[:, None, None, None]
    filters2 = rng.standard_normal((F2, F1, 3, 3)) / np.sqrt(9 * F1)
    centers = rng.uniform(-0.85, 0.85, (R, 2))  # (x right, y up)
    pixel = (np.arange(RETINA) + 0.5) / RETINA * 2 - 1  # pixel centres, -1..1
    px, py = np.meshgrid(pixel, -pixel)  # image rows run downwards
    windows = np.exp(-((px[None] - centers[:, :1, None]) ** 2 + (py[None] - centers[:, 1:, None]) ** 2) / (2 * 0.3**2))
    n_feat = 5 * F2
    system = VisualSystem(filters1, filters2, windows / windows.sum(axis=(1, 2), keepdims=True), centers,
                          rng.standard_normal((n_feat, config.n_image_components)) / np.sqrt(n_feat),
                          rng.standard_normal((n_feat, 2)) / np.sqrt(n_feat))
    raw = _raw_drives(images, system)
    features = raw["features"]
    system.stats["features"] = (features.mean(0), features.std(0) + 1e-9)
    z = (features - system.stats["features"][0]) / system.stats["features"][1]
    for name, value in (("contrast", raw["contrast"]), ("overall", raw["overall"]), ("scores", z @ system.projection),
                        ("erp", z @ system.erp_directions)):
        system.stats[name] = (value.mean(0), value.std(0) + 1e-9)
    return system


def image_drives(images: np.ndarray, system: VisualSystem) -> dict[str, np.ndarray]:
    """Standardised drives of ``images``: ``scores`` [I, J] (image components), ``contrast`` [I, R]
    (receptive fields), ``erp`` [I, K] (relative P100 / N170 / P300 amplitude changes)."""
    raw = _raw_drives(images, system)
    standard = lambda name, value: ((value - system.stats[name][0]) / system.stats[name][1]).astype(np.float32)
    z = (raw["features"] - system.stats["features"][0]) / system.stats["features"][1]
    erp = np.concatenate([standard("overall", raw["overall"])[:, None], standard("erp", z @ system.erp_directions)], 1)
    return {"scores": standard("scores", z @ system.projection), "contrast": standard("contrast", raw["contrast"]),
            "erp": erp}


@dataclass
class StimulusCode:
    """How the drives reach the scalp: shared by all subjects (seeded by ``config.seed``)."""

    system: VisualSystem
    erp_fields: np.ndarray  # [K, C]
    erp_latency: np.ndarray  # [K] (s)
    erp_widths: np.ndarray  # [K, 2] rise, fall (s)
    polarity: np.ndarray  # [K]
    image_fields: np.ndarray  # [J, C]
    image_latency: np.ndarray  # [J] (s)
    image_width: np.ndarray  # [J] (s)
    retinotopic_fields: np.ndarray  # [R, C]


def make_stimulus_code(images: np.ndarray, config: VisualEEGConfig) -> StimulusCode:
    """The visual system (fitted to ``images``) and the fields, latencies and widths of every source."""
    rng = np.random.default_rng([config.seed, 11])
    erp_fields = np.stack([_field(np.mean([_position(e) for e in centers], axis=0), width)
                           for _, centers, width, *_ in ERP_COMPONENTS])  # [K, C]
    J = config.n_image_components
    posterior = [n for n in CHANNEL_NAMES if n[0] in "PO" or n in ("CP1", "CP2", "CP5", "CP6")]
    centers = np.stack([_position(posterior[i]) for i in rng.integers(len(posterior), size=J)])
    image_fields = np.stack([_field(c + rng.normal(0, 0.01, 3), rng.uniform(0.03, 0.05)) for c in centers])
    image_fields *= rng.choice([-1.0, 1.0], size=(J, 1))  # [J, C]
    system = make_visual_system(images, config)
    return StimulusCode(system, erp_fields, np.array([c[3] for c in ERP_COMPONENTS]),
                        np.array([[c[4], c[5]] for c in ERP_COMPONENTS]), np.array([c[-1] for c in ERP_COMPONENTS]),
                        image_fields, rng.uniform(0.12, 0.26, J), rng.uniform(0.02, 0.04, J),
                        _retinotopic_fields(system.centers))


def _retinotopic_fields(centers: np.ndarray) -> np.ndarray:
    """C1-like sources [R, C] for receptive fields at ``centers`` [R, 2] (x right, y up, -1..1): a
    field in the right visual field drives the left occipital cortex and vice versa; upper-field
    fields are negative, lower-field fields positive (smoothly through the horizontal meridian)."""
    oz, o1 = _position("Oz"), _position("O1")
    poz = (_position("PO3") + _position("PO4")) / 2
    fields = []
    for x, y in centers:
        center = oz + 1.3 * x * (o1 - oz) + 0.8 * max(-y, 0) * (poz - oz)
        fields.append(-np.tanh(3 * y) * _field(center, 0.025))
    return np.stack(fields)


# ----------------------------------------------------------------------------- subjects


@dataclass
class SubjectProfile:
    mixing: np.ndarray  # [C, C] spatially smooth perturbation of the stimulus-locked fields
    latency_offset: float  # s
    gain: float
    noise_exponent: float
    alpha_freq: float
    alpha_gain: float
    background_chol: np.ndarray  # [C, C] spatial correlation of the background


def make_subject(config: VisualEEGConfig, subject: int) -> SubjectProfile:
    rng = np.random.default_rng([config.seed, 12, subject])
    C = config.n_channels
    xyz = electrode_positions()
    distance = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)  # [C, C]
    smooth = np.exp(-distance / 0.04) * rng.standard_normal((C, C))  # local leakage between neighbours
    mixing = np.diag(np.exp(rng.normal(0, 0.1, C))) @ (np.eye(C) + config.subject_mixing * smooth / np.sqrt(C / 4))
    corr_length = rng.uniform(0.03, 0.06)
    background_chol = np.linalg.cholesky(np.exp(-distance / corr_length) + 1e-6 * np.eye(C))
    return SubjectProfile(mixing=mixing, latency_offset=float(rng.normal(0, 0.008)), gain=float(rng.uniform(0.75, 1.25)),
                          noise_exponent=float(rng.uniform(1.3, 2.0)), alpha_freq=float(rng.uniform(8.5, 12.0)),
                          alpha_gain=float(rng.uniform(0.6, 1.4)), background_chol=background_chol)


# ----------------------------------------------------------------------------- trials


def session_schedule(labels: np.ndarray, image_indices: np.ndarray, config: VisualEEGConfig, session_id: int):
    """Presentation order of one session and its slow-state ids (local to the session).

    Randomised design: a random order, a new state every ``trials_per_state`` trials.
    Block design: all images of one class in a row (classes in random order), one state
    per class block.
    """
    rng = np.random.default_rng([config.seed, 13, session_id])
    if config.block_design:
        classes = rng.permutation(np.unique(labels[image_indices]))
        order = np.concatenate([rng.permutation(image_indices[labels[image_indices] == c]) for c in classes])
        block_of_class = {int(c): k for k, c in enumerate(classes)}
        state = np.array([block_of_class[int(labels[i])] for i in order])
    else:
        order = rng.permutation(image_indices)
        state = np.arange(len(order)) // config.trials_per_state
    return order, state


def _stimulus_locked(code: StimulusCode, subject: SubjectProfile, drives: dict, config: VisualEEGConfig,
                     rng) -> np.ndarray:
    """Evoked signal [N, C, L] (microvolts) of trials with image drives ``drives`` (of
    :func:`image_drives`, one row per trial)."""
    n = len(drives["scores"])
    t = np.arange(config.n_samples) / config.sfreq  # [L]
    shift = subject.latency_offset + rng.normal(0, config.latency_jitter_s, n)  # [N]
    gain = subject.gain * np.exp(rng.normal(0, config.amplitude_jitter, n))  # [N]

    amplitude = code.polarity * np.clip(1.0 + config.erp_modulation * drives["erp"], 0.0, None)  # [N, K]
    erp_time = _bumps(t, code.erp_latency[None] + shift[:, None], code.erp_widths[:, 0], code.erp_widths[:, 1])  # [N, K, L]
    erp = np.einsum("nk,kc,nkl->ncl", amplitude, code.erp_fields, erp_time)  # [N, C, L]
    image_time = _bumps(t, code.image_latency[None] + shift[:, None], code.image_width, code.image_width)  # [N, J, L]
    image = np.einsum("nj,jc,njl->ncl", drives["scores"], code.image_fields, image_time)  # [N, C, L]
    c1_time = _bumps(t, 0.08 + shift, 0.012, 0.018)  # [N, L]
    retinotopic = (drives["contrast"] @ code.retinotopic_fields)[:, :, None] * c1_time[:, None]  # [N, C, L]

    evoked = config.erp_uv * erp + config.image_uv * image + config.retinotopic_uv * retinotopic  # [N, C, L]
    evoked = np.einsum("dc,ncl->ndl", subject.mixing, evoked)  # the subject's own mixing
    return config.stimulus_gain * gain[:, None, None] * evoked


def _background(subject: SubjectProfile, n: int, config: VisualEEGConfig, rng) -> np.ndarray:
    """Ongoing EEG [N, C, L]: correlated 1/f activity, posterior alpha, sensor noise."""
    C, L = config.n_channels, config.n_samples
    # twice the trial length, then a crop: the FFT noise would otherwise wrap around the trial
    sources = colored_noise(rng, n * C, 2 * L, config.sfreq, subject.noise_exponent)[:, :L]
    background = np.einsum("dc,ncl->ndl", subject.background_chol, sources.reshape(n, C, L))  # [N, C, L]
    t = np.arange(L) / config.sfreq
    phase = rng.uniform(0, 2 * np.pi, n)
    alpha_amp = subject.alpha_gain * np.exp(rng.normal(0, 0.4, n))  # [N]
    alpha_field = _field((_position("O1") + _position("O2")) / 2 + np.array([0, 0.01, 0.02]), 0.05)  # [C]
    alpha = alpha_amp[:, None] * np.sin(2 * np.pi * subject.alpha_freq * t[None] + phase[:, None])  # [N, L]
    return (config.background_uv * background + config.alpha_uv * alpha_field[None, :, None] * alpha[:, None]
            + config.sensor_uv * rng.standard_normal((n, C, L)))


def _slow_states(n_states: int, config: VisualEEGConfig, rng) -> np.ndarray:
    """Per state: an offset and a drift over the trial on every electrode [S, C, L]."""
    offsets = _smooth_random_fields(rng, n_states, 0.08)  # [S, C]
    drifts = _smooth_random_fields(rng, n_states, 0.08)  # [S, C]
    ramp = np.linspace(-1, 1, config.n_samples)  # [L]
    return config.slow_state_uv * (offsets[:, :, None] + 0.5 * drifts[:, :, None] * ramp[None, None])


def simulate_visual_eeg(images: np.ndarray, labels: np.ndarray, config: VisualEEGConfig, subjects: list[int],
                        image_indices: np.ndarray, code: StimulusCode | None = None, progress=None) -> VisualEEG:
    """Trials of ``subjects`` each seeing ``image_indices`` once per repetition. ``labels`` only
    order the class blocks of a block design and fill the trial table: the EEG is computed from
    the pixels.

    Every (subject, repetition) is a session with its own presentation order and slow
    states; the random stream of a session depends only on the seed, the subject and the
    repetition, so adding subjects does not change the others' trials.
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must be [I, H, W], got shape {images.shape}")
    code = code or make_stimulus_code(images, config)
    drives = image_drives(images, code.system)  # from the pixels alone: no label reaches the EEG
    image_indices = np.asarray(image_indices)
    sessions = [(s, r) for s in subjects for r in range(config.repetitions)]
    parts, n_states_so_far = [], 0
    for subject_id, rep in (progress(sessions, desc="sessions") if progress else sessions):
        session_id = subject_id * config.repetitions + rep
        subject = make_subject(config, subject_id)
        rng = np.random.default_rng([config.seed, 14, session_id])
        order, local_state = session_schedule(labels, image_indices, config, session_id)
        evoked = _stimulus_locked(code, subject, {k: v[order] for k, v in drives.items()}, config, rng)
        states = _slow_states(int(local_state.max()) + 1, config, rng)  # [S, C, L]
        eeg = evoked + _background(subject, len(order), config, rng) + states[local_state]
        parts.append(dict(eeg=eeg.astype(np.float32), image=order, label=labels[order],
                          subject=np.full(len(order), subject_id), session=np.full(len(order), session_id),
                          state=local_state + n_states_so_far, position=np.arange(len(order))))
        n_states_so_far += int(local_state.max()) + 1
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    meta = {"sfreq": config.sfreq, "channel_names": list(CHANNEL_NAMES), "units": "uV"}
    return VisualEEG(**merged, meta=meta)


# ----------------------------------------------------------------------------- linear checks


def decoder_features(eeg: np.ndarray, bin_samples: int = 8) -> np.ndarray:
    """Flattened trial averaged over bins of ``bin_samples``: [N, C, L] -> [N, C * L / bin]."""
    n, c, l = eeg.shape
    usable = l - l % bin_samples
    return eeg[:, :, :usable].reshape(n, c, usable // bin_samples, bin_samples).mean(-1).reshape(n, -1)


def repetition_average(data: VisualEEG, trials: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ERP of each (subject, image) among ``trials``: EEG [M, C, L] averaged over its repetitions,
    with the image [M] and label [M] of each average."""
    trials = np.asarray(trials)
    keys = np.stack([data.subject[trials], data.image[trials]], axis=1)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    eeg = np.zeros((len(unique),) + data.eeg.shape[1:], dtype=np.float64)
    np.add.at(eeg, inverse, data.eeg[trials])
    eeg /= np.bincount(inverse)[:, None, None]
    first = np.unique(inverse, return_index=True)[1]
    return eeg.astype(np.float32), data.image[trials][first], data.label[trials][first]


def linear_decoder(eeg: np.ndarray, labels: np.ndarray, C: float = 0.01, bin_samples: int = 8, max_iter: int = 300):
    """A logistic-regression decoder (standardised, binned trials) fitted to ``eeg`` [N, C, L]."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    return model.fit(decoder_features(eeg, bin_samples), labels)


def fit_linear_decoder(eeg_train: np.ndarray, labels_train: np.ndarray, eeg_val: np.ndarray, labels_val: np.ndarray,
                       penalties=(1e-3, 1e-2, 1e-1), max_iter: int = 500):
    """:func:`linear_decoder` with its penalty C chosen by validation accuracy: (model, C, {C: accuracy})."""
    scores, models = {}, {}
    for C in penalties:
        models[C] = linear_decoder(eeg_train, labels_train, C, max_iter=max_iter)
        scores[C] = float((models[C].predict(decoder_features(eeg_val)) == labels_val).mean())
    best = max(scores, key=scores.get)
    return models[best], best, scores


def linear_decoding_accuracy(eeg: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray,
                             C: float = 0.01, bin_samples: int = 8) -> float:
    """Accuracy of a logistic-regression decoder on single trials (standardised, binned)."""
    model = linear_decoder(eeg[train], labels[train], C, bin_samples)
    return float((model.predict(decoder_features(eeg[test], bin_samples)) == labels[test]).mean())


def block_design_check(data: VisualEEG, seed: int = 0, test_fraction: float = 0.25) -> dict[str, float]:
    """Decode the class with two splits of the same trials.

    ``random_trial``: a share ``test_fraction`` of the trials drawn at random for testing,
    so every test trial has trials of its own block (slow state) in training.
    ``leave_block_out``: leave-one-session-out cross-validation (the mean over sessions),
    so every test block is unseen. With a block design and no stimulus information the first
    scores far above chance and the second does not. A held-out block tends to be decoded
    as one class, so the test unit is the block: all sessions are held out in turn to score
    enough blocks.
    """
    rng = np.random.default_rng([seed, 15])
    n = len(data)
    permuted = rng.permutation(n)
    n_test = int(round(test_fraction * n))
    random_test, random_train = permuted[:n_test], permuted[n_test:]
    sessions = np.unique(data.session)
    if len(sessions) < 2:
        raise ValueError("leave-block-out needs at least two sessions (repetitions x subjects)")
    held_out = [linear_decoding_accuracy(data.eeg, data.label, np.flatnonzero(data.session != s),
                                         np.flatnonzero(data.session == s)) for s in sessions]
    return {"random_trial": linear_decoding_accuracy(data.eeg, data.label, random_train, random_test),
            "leave_block_out": float(np.mean(held_out)),
            "chance": 1.0 / len(np.unique(data.label))}
