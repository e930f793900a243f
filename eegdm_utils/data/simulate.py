"""A simulated TUEV-style corpus: real EDF files with ``.rec`` event files, in the
directory layout of TUEV v2.0.1, that look like clinical EEG to an EEG reader.

Each subject is a patient with their own background (1/f colour, amplitude, alpha
frequency, line noise, sometimes a bad electrode) and their own pathology (spikes with a
focus, lateralised or generalised periodic discharges). Fields spread over the scalp by
electrode distance (MNE ``standard_1020`` positions). Events are written to ``.rec``
files as TUEV does: one line per TCP channel on which the event is seen,
``channel,start,end,label`` with 1-s events and labels 1..6 (SPSW, GPED, PLED, EYEM,
ARTF, BCKG).

Shape letters: E electrodes (23 referential), K TCP channels (22), T samples.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import expit

from ..core.files import atomic_write_bytes, atomic_write_json, read_json
from .edf import write_edf
from .montage import REFERENTIAL_ELECTRODES, TCP_PAIRS, TUH_CHANNEL_NAMES, electrode_positions
from .recordings import TUEV_CLASSES

CLASS_NAMES = TUEV_CLASSES  # the simulator draws the TUEV classes
SPSW, GPED, PLED, EYEM, ARTF, BCKG = range(6)
E = len(REFERENTIAL_ELECTRODES)
_INDEX = {e: i for i, e in enumerate(REFERENTIAL_ELECTRODES)}
_LEFT = [e for e in REFERENTIAL_ELECTRODES if e[-1] in "1357"]
_RIGHT = [e for e in REFERENTIAL_ELECTRODES if e[-1] in "2468"]


@dataclass
class SimulationConfig:
    """Size and seed of the simulated corpus (a smoke-sized default)."""

    n_train_subjects: int = 10
    n_eval_subjects: int = 4
    records_per_subject: int = 1
    record_seconds: int = 60
    sfreq: int = 256
    line_freq: float = 60.0
    seed: int = 0
    # Event episodes per minute of recording (pathological ones for subjects who have them).
    spsw_per_min: float = 1.5
    periodic_episodes_per_min: float = 0.8
    eyem_per_min: float = 1.2
    artf_per_min: float = 2.5
    bckg_per_min: float = 18.0
    benign_transients_per_min: float = 6.0  # unannotated sharp background transients
    bad_channel_prob: float = 0.25


# ----------------------------------------------------------------------------- helpers


def _distances() -> np.ndarray:
    pos = electrode_positions()
    xyz = np.stack([pos[e] for e in REFERENTIAL_ELECTRODES])  # [E, 3]
    return np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)  # [E, E]


def _gaussian_field(center: np.ndarray, sigma: float) -> np.ndarray:
    """Spatial weights [E] of a source at ``center`` (m) spreading with width ``sigma``."""
    pos = electrode_positions()
    xyz = np.stack([pos[e] for e in REFERENTIAL_ELECTRODES])
    d2 = ((xyz - center) ** 2).sum(-1)
    return np.exp(-d2 / (2 * sigma**2))


def colored_noise(rng, n_sources: int, n: int, sfreq: int, exponent: float) -> np.ndarray:
    """Unit-variance noise [S, T] with power ~ 1/f**exponent above 0.5 Hz."""
    spectrum = rng.standard_normal((n_sources, n // 2 + 1)) + 1j * rng.standard_normal((n_sources, n // 2 + 1))
    freqs = np.fft.rfftfreq(n, 1 / sfreq)
    shape = np.maximum(freqs, 0.5) ** (-exponent / 2)
    shape[0] = 0.0
    x = np.fft.irfft(spectrum * shape, n=n)
    return x / x.std(axis=1, keepdims=True)


def _bandpass_noise(rng, n: int, sfreq: int, lo: float, hi: float, n_sources: int = 1) -> np.ndarray:
    spectrum = rng.standard_normal((n_sources, n // 2 + 1)) + 1j * rng.standard_normal((n_sources, n // 2 + 1))
    freqs = np.fft.rfftfreq(n, 1 / sfreq)
    spectrum[:, (freqs < lo) | (freqs > hi)] = 0
    x = np.fft.irfft(spectrum, n=n)
    return x / (x.std(axis=1, keepdims=True) + 1e-12)


def _smooth_envelope(rng, n: int, sfreq: int, cutoff: float) -> np.ndarray:
    """Slowly varying positive envelope with mean ~1 (waxing and waning)."""
    slow = _bandpass_noise(rng, n, sfreq, 0.01, cutoff)[0]
    return np.clip(1.0 + 0.45 * slow, 0.15, None)


def _bump(t: np.ndarray, center: float, rise: float, fall: float) -> np.ndarray:
    """Asymmetric Gaussian bump peaking at ``center`` (s): rise and fall widths in s."""
    width = np.where(t < center, rise, fall)
    return np.exp(-0.5 * ((t - center) / width) ** 2)


# ----------------------------------------------------------------------------- subjects


@dataclass
class SubjectProfile:
    name: str
    split: str
    alpha_freq: float
    alpha_amp: float
    background_amp: float
    noise_exponent: float
    correlation_length: float
    line_amp: float
    bad_electrode: int | None
    pathologies: tuple[int, ...]
    spike_focus: int  # electrode index
    pled_side: str
    periodic_freq: float
    event_gain: float  # how prominent this patient's events are relative to background


def make_subjects(config: SimulationConfig) -> list[SubjectProfile]:
    rng = np.random.default_rng([config.seed, 1])
    subjects = []
    n_total = config.n_train_subjects + config.n_eval_subjects
    # Pathologies cycle so that every split of >= 3 subjects has each one.
    cycle = ((SPSW,), (PLED,), (GPED,), (SPSW, PLED), (SPSW,), (GPED, SPSW))
    foci = [e for e in REFERENTIAL_ELECTRODES if e not in ("A1", "A2", "FP1", "FP2")]
    for i in range(n_total):
        split = "train" if i < config.n_train_subjects else "eval"
        j = i if split == "train" else i - config.n_train_subjects
        pathologies = cycle[j % len(cycle)]
        subjects.append(SubjectProfile(
            name=f"sim{i:05d}",
            split=split,
            alpha_freq=float(rng.uniform(8.0, 12.0)),
            alpha_amp=float(rng.uniform(8.0, 35.0)),
            background_amp=float(rng.uniform(7.0, 18.0)),
            noise_exponent=float(rng.uniform(1.2, 2.2)),
            correlation_length=float(rng.uniform(0.03, 0.07)),
            line_amp=float(rng.uniform(0.5, 8.0)),
            bad_electrode=int(rng.integers(E)) if rng.random() < config.bad_channel_prob else None,
            pathologies=pathologies,
            spike_focus=_INDEX[foci[int(rng.integers(len(foci)))]],
            pled_side=str(rng.choice(["left", "right"])),
            periodic_freq=float(rng.uniform(0.5, 2.5)),
            event_gain=float(rng.uniform(0.6, 1.4)),
        ))
    return subjects


# ----------------------------------------------------------------------------- background


def simulate_background(rng, subject: SubjectProfile, n: int, sfreq: int, line_freq: float) -> np.ndarray:
    """Scalp potentials [E, T] in microvolts: 1/f activity correlated by distance,
    posterior alpha, line noise, and a bad electrode for some subjects."""
    cov = np.exp(-_distances() / subject.correlation_length)  # [E, E]
    mix = np.linalg.cholesky(cov + 1e-6 * np.eye(E))
    sources = colored_noise(rng, E, n, sfreq, subject.noise_exponent)  # [E, T]
    x = subject.background_amp * (mix @ sources)  # [E, T]

    t = np.arange(n) / sfreq
    drift = np.cumsum(rng.standard_normal(n)) / np.sqrt(sfreq) * 0.02  # slow alpha frequency wander
    phase = 2 * np.pi * subject.alpha_freq * t + drift
    occipital = (electrode_positions()["O1"] + electrode_positions()["O2"]) / 2
    alpha_field = _gaussian_field(occipital, 0.05)  # [E]
    envelope = _smooth_envelope(rng, n, sfreq, 0.4)  # [T]
    alpha = np.sin(phase) + 0.15 * np.sin(2 * phase + 0.7)  # mildly non-sinusoidal
    # left and right alpha are not identical: a small phase offset and amplitude asymmetry
    side = np.array([0.9 if e in _LEFT else 1.1 if e in _RIGHT else 1.0 for e in REFERENTIAL_ELECTRODES])
    x += subject.alpha_amp * (alpha_field * side)[:, None] * (envelope * alpha)[None]

    line_gain = subject.line_amp * rng.uniform(0.3, 1.0, size=E)  # [E]
    x += line_gain[:, None] * np.sin(2 * np.pi * line_freq * t + rng.uniform(0, 2 * np.pi))[None]

    if subject.bad_electrode is not None:
        b = subject.bad_electrode
        x[b] += 25.0 * colored_noise(rng, 1, n, sfreq, 0.5)[0]  # high-impedance contact
        x[b] += 40.0 * _bandpass_noise(rng, n, sfreq, 0.05, 0.4)[0]  # slow wandering
    return x


# ----------------------------------------------------------------------------- events


def _spike_wave(t: np.ndarray, onset: float, rng, amp: float) -> np.ndarray:
    """Surface-negative spike (20-70 ms) or sharp wave (70-200 ms) with an after-going slow wave."""
    duration = rng.uniform(0.02, 0.07) if rng.random() < 0.6 else rng.uniform(0.07, 0.2)
    rise, fall = 0.2 * duration, 0.3 * duration
    spike = -amp * _bump(t, onset, rise, fall)
    dip = 0.25 * amp * _bump(t, onset + 0.6 * duration, fall, fall * 1.5)
    slow_len = rng.uniform(0.2, 0.4)
    slow = -amp * rng.uniform(0.3, 0.8) * _bump(t, onset + duration + slow_len / 2, slow_len / 3, slow_len / 2.5)
    return spike + dip + slow


def _periodic_discharge(t: np.ndarray, onset: float, rng, amp: float) -> np.ndarray:
    """Blunt sharp discharge (100-300 ms), biphasic or triphasic."""
    width = rng.uniform(0.1, 0.3)
    wave = -amp * _bump(t, onset, width / 6, width / 4)
    wave += 0.45 * amp * _bump(t, onset - width / 3, width / 8, width / 8)
    if rng.random() < 0.5:
        wave += 0.5 * amp * _bump(t, onset + width / 2, width / 5, width / 3)
    return wave


def _event_field(kind: str, subject: SubjectProfile, rng) -> np.ndarray:
    pos = electrode_positions()
    if kind == "spike":
        jitter = rng.normal(0, 0.008, 3)
        return _gaussian_field(pos[REFERENTIAL_ELECTRODES[subject.spike_focus]] + jitter, rng.uniform(0.02, 0.035))
    if kind == "generalized":
        center = (pos["FZ"] + pos["CZ"]) / 2 + rng.normal(0, 0.01, 3)
        return 0.3 + 0.7 * _gaussian_field(center, rng.uniform(0.05, 0.07))
    if kind == "lateralized":
        side = _LEFT if subject.pled_side == "left" else _RIGHT
        center = np.mean([pos[e] for e in side if e in ("C3", "C4", "T3", "T4", "F3", "F4", "P3", "P4")], axis=0)
        center = center * np.array([1.15, 1, 1]) + rng.normal(0, 0.01, 3)
        return _gaussian_field(center, rng.uniform(0.045, 0.06))
    raise ValueError(kind)


def _eye_field(rng, lateral: bool) -> np.ndarray:
    """Blinks: positive at FP1/FP2 falling off backwards. Lateral movements: a horizontal
    dipole, positive on one side (F7) and negative on the other (F8)."""
    pos = electrode_positions()
    left_eye, right_eye = np.array([-0.032, 0.115, -0.035]), np.array([0.032, 0.115, -0.035])
    if not lateral:
        d = np.minimum(*(np.linalg.norm(np.stack([pos[e] for e in REFERENTIAL_ELECTRODES]) - eye, axis=1)
                         for eye in (left_eye, right_eye)))
        return np.exp(-d / 0.03)
    near_left = _gaussian_field(left_eye + np.array([-0.03, -0.02, 0.0]), 0.035)
    near_right = _gaussian_field(right_eye + np.array([0.03, -0.02, 0.0]), 0.035)
    return near_left - near_right


@dataclass
class Event:
    label: int
    start: int  # whole seconds
    signal: np.ndarray  # [E, T] contribution (microvolts), whole recording
    annotate_seconds: list[int] = field(default_factory=list)


def _muscle(rng, n: int, sfreq: int, seconds: tuple[int, int], electrodes: list[str], amp: float,
            rhythm: float | None = None) -> np.ndarray:
    x = np.zeros((E, n))
    s0, s1 = seconds[0] * sfreq, seconds[1] * sfreq
    length = s1 - s0
    t = np.arange(length) / sfreq
    if rhythm is None:
        envelope = np.sin(np.pi * t / t[-1]) ** 0.5
    else:  # chewing: bursts at 1-2 Hz
        envelope = np.clip(np.sin(2 * np.pi * rhythm * t + rng.uniform(0, 6.3)), 0, None) ** 0.7
    for e in electrodes:
        w = rng.uniform(0.5, 1.0)
        x[_INDEX[e], s0:s1] = amp * w * envelope * _bandpass_noise(rng, length, sfreq, 20.0, 70.0)[0]
    return x


def simulate_events(rng, subject: SubjectProfile, config: SimulationConfig, n: int) -> list[Event]:
    """Place events on a whole-second grid without overlap and synthesise their signals."""
    sfreq = config.sfreq
    seconds = config.record_seconds
    minutes = seconds / 60.0
    t = np.arange(n) / sfreq
    free = np.ones(seconds, dtype=bool)
    free[:2] = free[-3:] = False
    events: list[Event] = []

    def reserve(length: int) -> int | None:
        for _ in range(50):
            start = int(rng.integers(0, seconds - length + 1))
            if free[max(0, start - 1): start + length + 1].all():
                free[start: start + length] = False
                return start
        return None

    def count(rate: float) -> int:
        return int(rng.poisson(rate * minutes))

    gain = subject.event_gain
    for periodic in (GPED, PLED):
        if periodic not in subject.pathologies:
            continue
        for _ in range(max(1, count(config.periodic_episodes_per_min))):
            length = int(rng.integers(3, 8))
            start = reserve(length + 2)
            if start is None:
                continue
            field_ = _event_field("generalized" if periodic == GPED else "lateralized", subject, rng)
            period = 1.0 / (subject.periodic_freq * rng.uniform(0.9, 1.1))
            wave = np.zeros(n)
            onset = start + rng.uniform(0, period)
            amp = gain * rng.uniform(60, 200)
            while onset < start + length + 2:  # discharges run a little beyond the annotation
                wave += _periodic_discharge(t, onset, rng, amp * rng.uniform(0.8, 1.2))
                onset += period * rng.uniform(0.92, 1.08)
            annotated = list(range(start + 1, start + 1 + length))
            events.append(Event(periodic, start + 1, field_[:, None] * wave[None], annotated))

    if SPSW in subject.pathologies:
        for _ in range(count(config.spsw_per_min)):
            start = reserve(1)
            if start is None:
                continue
            field_ = _event_field("spike", subject, rng)
            wave = _spike_wave(t, start + rng.uniform(0.1, 0.75), rng, gain * rng.uniform(30, 150))
            events.append(Event(SPSW, start, field_[:, None] * wave[None], [start]))

    for _ in range(count(config.eyem_per_min)):
        start = reserve(1)
        if start is None:
            continue
        lateral = rng.random() < 0.4
        field_ = _eye_field(rng, lateral)
        onset = start + rng.uniform(0.1, 0.6)
        if lateral:  # look aside and back: a smoothed box
            dur = rng.uniform(0.3, 0.8)
            box = expit((t - onset) / 0.03) - expit((t - onset - dur) / 0.05)
            wave = rng.choice([-1, 1]) * rng.uniform(60, 200) * box
        else:
            wave = rng.uniform(150, 400) * _bump(t, onset, 0.06, 0.1)
        events.append(Event(EYEM, start, field_[:, None] * wave[None], [start]))

    temporal = ["T3", "T4", "F7", "F8", "T5", "T6", "T1", "T2"]
    for _ in range(count(config.artf_per_min)):
        kind = rng.choice(["muscle", "pop", "chewing"], p=[0.5, 0.25, 0.25])
        length = 1 if kind == "pop" else int(rng.integers(1, 4))
        start = reserve(length)
        if start is None:
            continue
        if kind == "pop":
            x = np.zeros((E, n))
            e = int(rng.integers(E))
            onset = start + rng.uniform(0.1, 0.7)
            step = (t >= onset) * np.exp(-np.clip(t - onset, 0, None) / rng.uniform(0.05, 0.3))
            x[e] = rng.choice([-1, 1]) * rng.uniform(50, 300) * step
        elif kind == "muscle":
            side = rng.choice(["left", "right", "both"])
            chosen = [e for e in temporal if side == "both" or (e in _LEFT) == (side == "left")]
            x = _muscle(rng, n, sfreq, (start, start + length), chosen, rng.uniform(8, 60))
        else:
            x = _muscle(rng, n, sfreq, (start, start + length), temporal, rng.uniform(10, 50),
                        rhythm=rng.uniform(1.0, 2.0))
        events.append(Event(ARTF, start, x, list(range(start, start + length))))

    for _ in range(count(config.bckg_per_min)):
        start = reserve(1)
        if start is None:
            continue
        events.append(Event(BCKG, start, None, [start]))
    return events


def benign_transients(rng, subject: SubjectProfile, config: SimulationConfig, n: int) -> np.ndarray:
    """Unannotated sharp background transients (wicket-like, vertex-like), so a sharp
    wave alone does not mean SPSW."""
    t = np.arange(n) / config.sfreq
    x = np.zeros((E, n))
    pos = electrode_positions()
    for _ in range(int(rng.poisson(config.benign_transients_per_min * config.record_seconds / 60))):
        center = pos[REFERENTIAL_ELECTRODES[int(rng.integers(E))]]
        field_ = _gaussian_field(center, rng.uniform(0.02, 0.05))
        onset = rng.uniform(1, config.record_seconds - 1)
        width = rng.uniform(0.04, 0.15)
        wave = -rng.uniform(15, 60) * _bump(t, onset, width / 3, width / 2.5)
        x += field_[:, None] * wave[None]
    return x


# ----------------------------------------------------------------------------- annotation


_BIPOLAR_A = np.array([_INDEX[a] for a, _ in TCP_PAIRS])
_BIPOLAR_B = np.array([_INDEX[b] for _, b in TCP_PAIRS])
# How many TCP channels an event of each class is annotated on (threshold on the
# event's own bipolar RMS relative to its maximum, and a cap).
_ANNOTATION_RULE = {SPSW: (0.45, 3), GPED: (0.5, 6), PLED: (0.3, 8), EYEM: (0.5, 3), ARTF: (0.5, 4)}


def annotation_channels(rng, event: Event, second: int, sfreq: int) -> list[int]:
    """TCP channels on which ``event`` is seen during ``second`` (for its .rec lines)."""
    if event.label == BCKG:
        k = int(rng.integers(1, 4))
        return sorted(rng.choice(len(TCP_PAIRS), size=k, replace=False).tolist())
    seg = event.signal[:, second * sfreq: (second + 1) * sfreq]  # [E, sfreq]
    bipolar = seg[_BIPOLAR_A] - seg[_BIPOLAR_B]  # [K, sfreq]
    rms = np.sqrt((bipolar**2).mean(axis=1))  # [K]
    if rms.max() <= 0:
        return []
    threshold, cap = _ANNOTATION_RULE[event.label]
    # Ratios rounded to 1e-6 and a plain, index-tie-broken sort: the choice must not hinge
    # on last-bit differences between CPUs (SIMD exp, summation order, vectorised argsort).
    ratio = [round(float(r), 6) for r in rms / rms.max()]
    ranked = sorted(range(len(ratio)), key=lambda k: (-ratio[k], k))
    return sorted(k for k in ranked[:cap] if ratio[k] >= threshold)


# ----------------------------------------------------------------------------- corpus


def simulate_record(config: SimulationConfig, subject: SubjectProfile, record: int):
    """One recording: referential data [23, T] (microvolts) and its .rec lines."""
    rng = np.random.default_rng([config.seed, 2, int(subject.name[3:]), record])
    n = config.record_seconds * config.sfreq
    scalp = simulate_background(rng, subject, n, config.sfreq, config.line_freq)  # [E, T]
    scalp += benign_transients(rng, subject, config, n)
    lines = []
    for event in simulate_events(rng, subject, config, n):
        if event.signal is not None:
            scalp += event.signal
        for second in event.annotate_seconds:
            for k in annotation_channels(rng, event, second, config.sfreq):
                lines.append((k, float(second), float(second + 1), event.label + 1))
    # referential recording against linked ears
    reference = 0.5 * (scalp[_INDEX["A1"]] + scalp[_INDEX["A2"]])  # [T]
    referential = scalp - reference[None]  # [E, T]
    lines.sort(key=lambda line: (line[1], line[0]))
    return referential, lines


def format_rec(lines) -> str:
    return "".join(f"{k},{start:.1f},{end:.1f},{label}\n" for k, start, end, label in lines)


def write_corpus(root: str | os.PathLike, config: SimulationConfig, progress=None) -> dict:
    """Write the corpus under ``root`` (``edf/train/<subject>/<record>.edf`` + ``.rec``,
    ``edf/eval/...``) and return its description (also written to ``root/corpus.json``).

    The same configuration writes byte-identical files. An existing corpus written with
    the same configuration is reused; one written with another raises an error.
    """
    root = Path(root)
    description_path = root / "corpus.json"
    wanted = {"generator": "eegdm_utils.data.simulate", "config": asdict(config)}
    if description_path.exists():

        existing = read_json(description_path)
        if existing.get("config") == wanted["config"]:
            return existing
        differing = sorted(k for k in wanted["config"] if existing.get("config", {}).get(k) != wanted["config"][k])
        raise FileExistsError(
            f"{root}: holds a simulated corpus written with other settings ({', '.join(differing)} differ); "
            "choose another folder"
        )
    subjects = make_subjects(config)
    counts = {split: [0] * len(CLASS_NAMES) for split in ("train", "eval")}
    files = []
    iterator = [(s, r) for s in subjects for r in range(config.records_per_subject)]
    for subject, record in (progress(iterator, desc="simulate") if progress else iterator):
        data, lines = simulate_record(config, subject, record)
        stem = f"{subject.name}_{record + 1:08d}"
        folder = root / "edf" / subject.split / subject.name
        write_edf(folder / f"{stem}.edf", data, config.sfreq, TUH_CHANNEL_NAMES)
        atomic_write_bytes(folder / f"{stem}.rec", format_rec(lines).encode())
        for line in lines:
            counts[subject.split][line[3] - 1] += 1
        files.append(str((folder / f"{stem}.edf").relative_to(root)))
    description = {
        **wanted,
        "subjects": {s.name: {k: v for k, v in asdict(s).items() if k != "name"} for s in subjects},
        "files": files,
        "annotation_lines": {split: dict(zip(CLASS_NAMES, c)) for split, c in counts.items()},
    }
    atomic_write_json(description_path, description)
    return description
