"""The numbers the EEGDM paper reports (Puah et al. 2025, arXiv:2508.14086), in one place: its TUEV
table with the methods it compares against, its ablations, and which of this collection's
ablation variants each ablation row stands for. Every figure and table that shows a paper number
reads it from here."""

from __future__ import annotations

# Puah et al. 2025 (EEGDM), TUEV test set, x100: Cohen's kappa / balanced accuracy / weighted F1.
PAPER_TUEV = {
    "EEGDM (paper)": (74.23, 75.57, 86.88),
    "LaBraM-Base": (64.33, 67.25, 82.01),
    "CBraMod": (67.72, 66.71, 83.42),
    "BIOT": (52.73, 52.81, 74.92),
    "Gram-L": (71.30, 74.87, 88.24),
}

PAPER_ABLATIONS = {
    "without mu-law": (72.50, 69.12, 85.79),
    "linear schedule": (70.97, 71.19, 85.07),
    "noise injection": (71.39, 56.19, 84.87),
    "no fusion": (61.60, 51.13, 79.93),
    "mean fusion": (65.05, 59.40, 82.08),
    "test at 190 Hz": (70.26, 72.78, 85.17),
    "test at 180 Hz": (66.54, 68.36, 83.38),
}

# The paper's TUEV results for the variants it reports (kappa / balanced accuracy / weighted F1, x100)
PAPER_NAMES = {"full": "EEGDM (paper)", "no_mulaw": "without mu-law", "linear_schedule": "linear schedule",
               "noise_injection": "noise injection", "no_fusion": "no fusion", "mean_fusion": "mean fusion",
               "rate_190": "test at 190 Hz", "rate_180": "test at 180 Hz"}

PAPER_RESULTS = {v: {**PAPER_TUEV, **PAPER_ABLATIONS}[name] for v, name in PAPER_NAMES.items()}
