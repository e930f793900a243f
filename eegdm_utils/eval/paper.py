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

# Its ablation tables (preprint V2, Tables II-VI and VIII, the release's EEGDM_V2.pdf): every row but the full
# model, under the paper's own row label (Table: row), x100 means over its five seeds.
PAPER_ABLATIONS = {
    "II: - mu-law signal embedding": (72.50, 69.12, 85.79),
    "II: - cosine noise schedule": (70.97, 71.19, 85.07),
    "II: - noiseless forward process": (71.39, 56.19, 84.87),
    "III: step 1": (74.46, 74.87, 86.94),
    "III: step 2": (73.73, 74.83, 86.66),
    "III: step 3": (69.05, 69.89, 84.34),
    "IV: std pool, filter": (73.46, 68.74, 86.49),
    "IV: mean pool, gate": (71.66, 57.71, 85.24),
    "IV: mean pool, filter": (69.83, 68.33, 84.46),
    "V: first half": (62.97, 64.57, 81.00),
    "V: second half": (71.60, 68.40, 85.60),
    "V: first quarter": (59.63, 58.75, 78.88),
    "V: second quarter": (68.40, 69.47, 83.80),
    "V: third quarter": (68.32, 64.39, 83.96),
    "V: fourth quarter": (70.48, 65.78, 84.71),
    "VI: no fusion": (61.60, 51.13, 79.93),
    "VI: mean fusion": (65.05, 59.40, 82.08),
    "VIII: test at 190 Hz": (70.26, 72.78, 85.17),
    "VIII: test at 180 Hz": (66.54, 68.36, 83.38),
}

# This collection's ablation variants (eval.ablations.VARIANTS) that run a row of the paper as the reference's
# configs do; the others are ours and have no paper number. Table III's steps 1-3 are the reference's
# conf/cache/base_t0, base_t1 and base_t2 (the paper counts from 1, the configs from 0).
PAPER_NAMES = {"full": "EEGDM (paper)", "no_mulaw": "II: - mu-law signal embedding",
               "linear_schedule": "II: - cosine noise schedule", "noise_injection": "II: - noiseless forward process",
               "step1": "III: step 1", "step2": "III: step 2", "step3": "III: step 3",
               "filter_std": "IV: std pool, filter", "gate_mean": "IV: mean pool, gate",
               "filter_mean": "IV: mean pool, filter", "first_half": "V: first half", "second_half": "V: second half",
               "first_quarter": "V: first quarter", "second_quarter": "V: second quarter",
               "third_quarter": "V: third quarter", "fourth_quarter": "V: fourth quarter",
               "no_fusion": "VI: no fusion", "mean_fusion": "VI: mean fusion",
               "rate_190": "VIII: test at 190 Hz", "rate_180": "VIII: test at 180 Hz"}

PAPER_RESULTS = {v: {**PAPER_TUEV, **PAPER_ABLATIONS}[name] for v, name in PAPER_NAMES.items()}
