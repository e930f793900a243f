"""Simulated visual evoked EEG for each shown image: the EEG half of the paired
stimulus-EEG data (a stand-in for datasets such as EEG-ImageNet or THINGS-EEG).

Every trial is 0.5 s of 32-channel EEG at 256 Hz after the image onset, the sum of

- class-dependent ERP components: a P100 (occipital), an N170 (occipito-temporal) and a
  P300 (parietal), whose amplitude, latency and topography depend on the digit class;
- an image-specific term driven by the image's own structure: each of its leading
  principal-component scores drives a spatio-temporal pattern (120-260 ms), and its
  coarse layout drives retinotopic C1-like sources at ~80 ms (contralateral hemisphere,
  polarity flipping between the upper and lower visual field);
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
components, G layout grid side, I images.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..simulate import _colored_noise

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


@dataclass
class VisualEEGConfig:
    """The paired recording: who sees what, and how strong each part of the signal is."""

    sfreq: int = 256
    n_samples: int = 128  # 0.5 s after the image onset
    n_subjects: int = 4  # paired subjects: they see every image (train, val and test)
    n_pretrain_subjects: int = 4  # other subjects, unlabeled, for stage A: they see training images only
    repetitions: int = 2  # sessions per subject; each shows every image once
    n_image_components: int = 12  # leading principal components of the image that drive the EEG
    layout_grid: int = 4  # coarse layout (grid x grid) that drives the retinotopic sources
    erp_uv: float = 3.0  # class-dependent ERP amplitude (microvolts)
    class_contrast: float = 0.45  # how much the ERP amplitudes differ between classes (relative)
    image_uv: float = 1.2  # image-specific term per unit principal-component score
    layout_uv: float = 1.0  # retinotopic term per unit (standardised) layout cell
    latency_jitter_s: float = 0.012
    amplitude_jitter: float = 0.25  # log-normal sigma of the per-trial gain
    background_uv: float = 5.5  # 1/f background (calibrated: a linear decoder gets ~36% 10-way)
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
    label: np.ndarray  # [N] class of the image
    subject: np.ndarray  # [N]
    session: np.ndarray  # [N] global session id (subject x repetition)
    state: np.ndarray  # [N] global slow-state (block) id
    position: np.ndarray  # [N] presentation position within the session
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.eeg)

    def table(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in ("image", "label", "subject", "session", "state", "position")}


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


# ----------------------------------------------------------------------------- the stimulus code


@dataclass
class StimulusCode:
    """How stimuli map to cortical sources: shared by all subjects (seeded by ``config.seed``)."""

    erp_fields: np.ndarray  # [10, K, C] class-specific topographies
    erp_amplitude: np.ndarray  # [10, K]
    erp_latency: np.ndarray  # [10, K] (s)
    erp_widths: np.ndarray  # [K, 2] rise, fall (s)
    image_fields: np.ndarray  # [J, C]
    image_latency: np.ndarray  # [J] (s)
    image_width: np.ndarray  # [J] (s)
    layout_fields: np.ndarray  # [G*G, C]
    pca_mean: np.ndarray  # [P] pixel mean
    pca_components: np.ndarray  # [J, P]
    pca_scale: np.ndarray  # [J] score standard deviations
    layout_mean: np.ndarray  # [G*G]
    layout_scale: np.ndarray  # [G*G]


def make_stimulus_code(images: np.ndarray, config: VisualEEGConfig) -> StimulusCode:
    """Fields, amplitudes and latencies of every stimulus-locked source.

    The principal components and the layout statistics are those of all images: they
    belong to the simulated brain, not to any model, so no split is involved.
    """
    rng = np.random.default_rng([config.seed, 11])
    n_classes, K = 10, len(ERP_COMPONENTS)
    base = np.stack([_field(np.mean([_position(e) for e in centers], axis=0), width)
                     for _, centers, width, *_ in ERP_COMPONENTS])  # [K, C]
    wobble = _smooth_random_fields(rng, n_classes * K).reshape(n_classes, K, -1)  # [10, K, C]
    erp_fields = base[None] * (1.0 + 0.35 * wobble)  # [10, K, C]
    polarity = np.array([c[-1] for c in ERP_COMPONENTS])  # [K]
    erp_amplitude = polarity * np.exp(config.class_contrast * rng.standard_normal((n_classes, K)))  # [10, K]
    erp_latency = np.array([c[3] for c in ERP_COMPONENTS])[None] + rng.normal(0, 0.012, (n_classes, K))
    erp_widths = np.array([[c[4], c[5]] for c in ERP_COMPONENTS])  # [K, 2]

    flat = images.reshape(len(images), -1).astype(np.float64)  # [I, P]
    mean = flat.mean(axis=0)
    _, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
    J = config.n_image_components
    components, scale = vt[:J], s[:J] / np.sqrt(len(flat) - 1)  # [J, P], [J]
    posterior = [n for n in CHANNEL_NAMES if n[0] in "PO" or n in ("CP1", "CP2", "CP5", "CP6")]
    centers = np.stack([_position(posterior[i]) for i in rng.integers(len(posterior), size=J)])
    image_fields = np.stack([_field(c + rng.normal(0, 0.01, 3), rng.uniform(0.03, 0.05)) for c in centers])
    image_fields *= rng.choice([-1.0, 1.0], size=(J, 1))  # [J, C]
    image_latency = rng.uniform(0.12, 0.26, J)
    image_width = rng.uniform(0.02, 0.04, J)

    G = config.layout_grid
    layout = _layout(images, G)  # [I, G*G]
    layout_fields = _retinotopic_fields(G)  # [G*G, C]
    return StimulusCode(erp_fields, erp_amplitude, erp_latency, erp_widths, image_fields, image_latency,
                        image_width, layout_fields, mean, components, scale,
                        layout.mean(axis=0), layout.std(axis=0) + 1e-6)


def _layout(images: np.ndarray, grid: int) -> np.ndarray:
    from .stimuli import coarse_layout

    return coarse_layout(images, grid).reshape(len(images), -1)  # [I, G*G]


def _retinotopic_fields(grid: int) -> np.ndarray:
    """C1-like sources [G*G, C]: a cell in the right visual field drives the left occipital
    cortex and vice versa; upper-field cells are negative, lower-field cells positive."""
    oz, o1 = _position("Oz"), _position("O1")
    poz = (_position("PO3") + _position("PO4")) / 2
    fields = []
    for row in range(grid):
        for col in range(grid):
            x = (col - (grid - 1) / 2) / (grid / 2)  # -1 left .. +1 right of fixation
            y = ((grid - 1) / 2 - row) / (grid / 2)  # +1 upper .. -1 lower field
            center = oz + 1.3 * x * (o1 - oz) + 0.8 * max(-y, 0) * (poz - oz)
            fields.append(-np.sign(y) * _field(center, 0.025))
    return np.stack(fields)


def image_drives(images: np.ndarray, code: StimulusCode) -> tuple[np.ndarray, np.ndarray]:
    """Standardised principal-component scores [I, J] and layout cells [I, G*G] of images."""
    flat = images.reshape(len(images), -1)
    scores = (flat - code.pca_mean) @ code.pca_components.T / code.pca_scale  # [I, J]
    grid = int(round(np.sqrt(len(code.layout_mean))))
    layout = (_layout(images, grid) - code.layout_mean) / code.layout_scale  # [I, G*G]
    return scores.astype(np.float32), layout.astype(np.float32)


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


def _stimulus_locked(code: StimulusCode, subject: SubjectProfile, labels: np.ndarray, scores: np.ndarray,
                     layout: np.ndarray, config: VisualEEGConfig, rng) -> np.ndarray:
    """Evoked signal [N, C, L] (microvolts) for trials of classes ``labels`` [N] with image
    drives ``scores`` [N, J] and ``layout`` [N, G*G]."""
    n = len(labels)
    t = np.arange(config.n_samples) / config.sfreq  # [L]
    shift = subject.latency_offset + rng.normal(0, config.latency_jitter_s, n)  # [N]
    gain = subject.gain * np.exp(rng.normal(0, config.amplitude_jitter, n))  # [N]

    erp_time = _bumps(t, code.erp_latency[labels] + shift[:, None], code.erp_widths[:, 0], code.erp_widths[:, 1])  # [N, K, L]
    erp = np.einsum("nk,nkc,nkl->ncl", code.erp_amplitude[labels], code.erp_fields[labels], erp_time)  # [N, C, L]
    image_time = _bumps(t, code.image_latency[None] + shift[:, None], code.image_width, code.image_width)  # [N, J, L]
    image = np.einsum("nj,jc,njl->ncl", scores, code.image_fields, image_time)  # [N, C, L]
    c1_time = _bumps(t, 0.08 + shift, 0.012, 0.018)  # [N, L]
    retinotopic = (layout @ code.layout_fields)[:, :, None] * c1_time[:, None]  # [N, C, L]

    evoked = config.erp_uv * erp + config.image_uv * image + config.layout_uv * retinotopic  # [N, C, L]
    evoked = np.einsum("dc,ncl->ndl", subject.mixing, evoked)  # the subject's own mixing
    return config.stimulus_gain * gain[:, None, None] * evoked


def _background(subject: SubjectProfile, n: int, config: VisualEEGConfig, rng) -> np.ndarray:
    """Ongoing EEG [N, C, L]: correlated 1/f activity, posterior alpha, sensor noise."""
    C, L = config.n_channels, config.n_samples
    # twice the trial length, then a crop: the FFT noise would otherwise wrap around the trial
    sources = _colored_noise(rng, n * C, 2 * L, config.sfreq, subject.noise_exponent)[:, :L]
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
    """Trials of ``subjects`` each seeing ``image_indices`` once per repetition.

    Every (subject, repetition) is a session with its own presentation order and slow
    states; the random stream of a session depends only on the seed, the subject and the
    repetition, so adding subjects does not change the others' trials.
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must be [I, H, W], got shape {images.shape}")
    code = code or make_stimulus_code(images, config)
    scores, layout = image_drives(images, code)
    image_indices = np.asarray(image_indices)
    sessions = [(s, r) for s in subjects for r in range(config.repetitions)]
    parts, n_states_so_far = [], 0
    for subject_id, rep in (progress(sessions, desc="sessions") if progress else sessions):
        session_id = subject_id * config.repetitions + rep
        subject = make_subject(config, subject_id)
        rng = np.random.default_rng([config.seed, 14, session_id])
        order, local_state = session_schedule(labels, image_indices, config, session_id)
        evoked = _stimulus_locked(code, subject, labels[order], scores[order], layout[order], config, rng)
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


def linear_decoding_accuracy(eeg: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray,
                             C: float = 0.01, bin_samples: int = 8) -> float:
    """Accuracy of a logistic-regression decoder on single trials (standardised, binned)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = decoder_features(eeg, bin_samples)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=300))
    model.fit(features[train], labels[train])
    return float((model.predict(features[test]) == labels[test]).mean())


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
