"""One entry point for notebook 10: where the recordings come from (the simulated
corpus, a TUEV root, or any EDF folder) and the store they are preprocessed into."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..core.identity import fingerprint
from .recordings import DataError, collect_edf_folder, collect_tuev
from .simulate import CLASS_NAMES, SimulationConfig, write_corpus


def simulated_root(sim_dir: str | Path, config: SimulationConfig) -> Path:
    """The folder of the simulated corpus for ``config`` (one folder per configuration)."""
    return Path(sim_dir) / f"seed{config.seed}-{fingerprint(asdict(config))[:8]}"


def recordings(data_root: str | Path | None, labels: str | Path | None = None, sim_dir: str | Path = "data",
               sim_config: SimulationConfig | None = None, progress=None, test_subjects=None):
    """Return (specs, class_names, source description).

    ``data_root`` empty: write (or reuse) the simulated TUEV-style corpus under ``sim_dir``.
    A folder with ``edf/train`` and ``edf/eval``: a TUEV v2.0.1 root. Any other folder:
    EDF files labelled by the ``labels`` table, with ``test_subjects`` (None: a seeded 20% of the
    subjects) as the test split.
    """
    if test_subjects is not None and not (data_root and labels):
        raise DataError(f"test_subjects {list(test_subjects)} apply to an EDF folder with a labels table; the "
                        "simulated corpus and TUEV have their own test split (edf/eval)")
    if not data_root:
        config = sim_config or SimulationConfig()
        root = simulated_root(sim_dir, config)
        write_corpus(root, config, progress=progress)
        return collect_tuev(root), list(CLASS_NAMES), {"kind": "simulated TUEV", "config": asdict(config)}
    root = Path(data_root)
    if not root.is_dir():
        raise DataError(f"{root}: data_root is not a folder")
    if (root / "edf" / "train").is_dir():
        return collect_tuev(root), list(CLASS_NAMES), {"kind": "TUEV", "root": str(root.resolve())}
    if not labels:
        raise DataError(f"{root}: not a TUEV root (no edf/train); an EDF folder needs a labels table "
                        "(CSV with file,start,end,label or file,label)")
    specs, class_names = collect_edf_folder(root, labels, test_subjects=test_subjects)
    return specs, class_names, {"kind": "EDF folder", "root": str(root.resolve()), "labels": str(Path(labels).resolve())}
