"""Mutation testing of the core modules with mutmut (`make mutation`), and its report.

    python tools/mutation.py                  every core module (about an hour on 2 cores)
    python tools/mutation.py mulaw edf        some of them (module names as in MODULES)
    python tools/mutation.py --report-only    rewrite docs/mutation.md from the results on disk

mutmut (configured in pyproject.toml, [tool.mutmut]) copies the package into mutants/ (git-ignored;
the package itself is never edited), runs the selected test files once to learn which tests call
each function, then runs every mutant against only the tests that cover its function. Results
stay in mutants/, so a later run only tests what changed. This script then writes
docs/mutation.md: per module, mutants killed, survived, triaged as equivalent (EQUIVALENT below,
with the reason), and the score killed / (all - equivalent), with the date and the wall time.
Lines of error messages and progress text are not mutated (pyproject: do_not_mutate_patterns):
their wording is checked by the bad-input tests, not by mutation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "docs" / "mutation.md"

# module -> (file, the test files that cover it; pyproject's selection is their union)
MODULES = {
    "s4d": ("eegdm_utils/models/s4d.py", ["tests/test_s4d.py", "tests/test_ssmdp.py"]),
    "s4d_kernels": ("eegdm_utils/models/s4d_kernels.py", ["tests/test_s4d.py", "tests/test_ssmdp.py"]),
    "ssmdp": ("eegdm_utils/models/ssmdp.py", ["tests/test_ssmdp.py", "tests/test_oracles.py", "tests/test_mutation_cases.py"]),
    "diffusion": ("eegdm_utils/models/diffusion.py", ["tests/test_ssmdp.py", "tests/test_oracles.py", "tests/test_mutation_cases.py"]),
    "pretraining": ("eegdm_utils/train/pretraining.py", ["tests/test_pretrain.py", "tests/test_oracles.py", "tests/test_mutation_cases.py"]),
    "latent_cache": ("eegdm_utils/train/latent_cache.py", ["tests/test_cache_finetune.py", "tests/test_ssmdp.py", "tests/test_mutation_cases.py"]),
    "lft": ("eegdm_utils/models/lft.py", ["tests/test_lft.py", "tests/test_oracles.py", "tests/test_mutation_cases.py"]),
    "finetuning": ("eegdm_utils/train/finetuning.py", ["tests/test_lft.py", "tests/test_oracles.py", "tests/test_mutation_cases.py"]),
    "controls": ("eegdm_utils/eval/controls.py", ["tests/test_controls.py", "tests/test_mutation_cases.py"]),
    "scoring": ("eegdm_utils/core/scoring.py", ["tests/test_metrics.py", "tests/test_mutation_cases.py"]),
    "edf": ("eegdm_utils/data/edf.py", ["tests/test_bad_input.py", "tests/test_bad_input_fuzz.py", "tests/test_properties.py",
                                   "tests/test_real_edf.py", "tests/test_mutation_cases.py"]),
    "montage": ("eegdm_utils/data/montage.py", ["tests/test_montage.py", "tests/test_properties.py",
                                           "tests/test_mutation_cases.py"]),
    "preprocess": ("eegdm_utils/data/preprocess.py", ["tests/test_preprocess_store.py", "tests/test_bad_input.py"]),
    "store": ("eegdm_utils/data/store.py", ["tests/test_preprocess_store.py", "tests/test_bad_input.py",
                                       "tests/test_bad_input_fuzz.py", "tests/test_properties.py",
                                       "tests/test_mutation_cases.py"]),
    "mulaw": ("eegdm_utils/data/mulaw.py", ["tests/test_mulaw.py", "tests/test_properties.py"]),
    "tokenizer": ("eegdm_utils/foundation/tokenizer.py", ["tests/test_foundation.py", "tests/test_properties.py",
                                                        "tests/test_mutation_cases.py"]),
    "collator": ("eegdm_utils/foundation/collator.py", ["tests/test_foundation.py", "tests/test_properties.py",
                                                       "tests/test_mutation_cases.py"]),
    "e2i_metrics": ("eegdm_utils/e2i/metrics.py", ["tests/test_e2i_metrics.py", "tests/test_e2i_metric_cases.py",
                                                   "tests/test_oracles.py"]),
}

# Survivors triaged as equivalent (no test can tell them from the original): mutant -> why.
_F64 = "a float64 cast dropped: a no-op for float64 input (float32 input differs only by rounding)"
_E2I = "eegdm_utils.e2i.metrics.x_"
EQUIVALENT: dict[str, str] = {
    "eegdm_utils.data.mulaw.x_staged_mu_law__mutmut_18": "`> 1` -> `>= 1`: at |x| = 1 both branches give exactly +-1 "
    "(log1p(mu) / log1p(mu) is 1.0 in float32 and float64)",
    **{f"{_E2I}{name}": _F64 for name in [
        "_row_standardise__mutmut_7", "_row_standardise__mutmut_9", "frechet_distance__mutmut_3",
        "frechet_distance__mutmut_5", "frechet_distance__mutmut_7", "frechet_distance__mutmut_9",
        "layout_scores__mutmut_3", "layout_scores__mutmut_5", "layout_scores__mutmut_7", "layout_scores__mutmut_9",
        "layout_scores__mutmut_16", "layout_scores__mutmut_18", "n_way_identification__mutmut_4",
        "n_way_identification__mutmut_6", "n_way_identification__mutmut_26", "n_way_identification__mutmut_28",
        "retrieval_top_k__mutmut_6", "retrieval_top_k__mutmut_8", "retrieval_top_k__mutmut_17",
        "retrieval_top_k__mutmut_19", "retrieval_top_k__mutmut_47", "ssim__mutmut_6", "ssim__mutmut_8",
        "ssim__mutmut_15", "ssim__mutmut_17", "standard_error__mutmut_3", "standard_error__mutmut_5"]},
    f"{_E2I}_row_standardise__mutmut_11": "reshape(len(x), -2): numpy reads any negative size as 'the rest'",
    f"{_E2I}_row_standardise__mutmut_21": "norm - 1e-12 instead of + 1e-12: the same to 1e-12 relative (a constant "
    "row is all zeros after centring either way)",
    f"{_E2I}retrieval_top_k__mutmut_9": "norm - 1e-12 instead of + 1e-12: the same to 1e-12 relative",
    f"{_E2I}ssim__mutmut_24": "grey [B, 1, H, W] pairs not squeezed (shape[2] tested): SSIM over one channel axis of "
    "size 1 is the grey SSIM",
    f"{_E2I}ssim__mutmut_27": "grey [B, 1, H, W] pairs not squeezed: SSIM over one channel axis of size 1 is the grey "
    "SSIM (pairs of other shapes are refused either way)",
    f"{_E2I}retrieval_top_k__mutmut_42": "`>=` -> `>` against own - 1e-12: the same count unless two cosines differ "
    "by less than 1e-12",
    f"{_E2I}two_way_identification__mutmut_27": "`>` -> `>=` against correlation + 1e-12: the same unless two "
    "correlations differ by exactly 1e-12",
    f"{_E2I}frechet_distance__mutmut_26": "np.cov(rowvar=None): None is falsy, as False",
    f"{_E2I}frechet_distance__mutmut_31": "np.cov(rowvar=None): None is falsy, as False",
    f"{_E2I}derangement__mutmut_5": "another fixed seed stream ([seed, 32] for [seed, 31]): as good a derangement",
    f"{_E2I}standard_error__mutmut_13": "float('NAN') is NaN as float('nan')",
    "eegdm_utils.foundation.tokenizer.x_reject_out_of_range__mutmut_9": "nan_to_num(nan=None): torch's default "
    "turns NaN into 0.0, as nan=0.0",
    "eegdm_utils.foundation.tokenizer.x_reject_out_of_range__mutmut_11": "nan_to_num without nan=: torch's default "
    "turns NaN into 0.0",
    "eegdm_utils.data.montage.xǁTCPMappingǁapply__mutmut_2": "assigning None into a float array stores NaN",
    "eegdm_utils.models.s4d_kernels.xǁ_FFTConvǁforward__mutmut_8": "rfft(k) without n=2L: k is already [H, 2L]",
    "eegdm_utils.models.s4d_kernels.xǁ_FFTConvǁforward__mutmut_10": "rfft(k) without n=2L: k is already [H, 2L]",
    "eegdm_utils.models.s4d_kernels.xǁ_FFTConvǁforward__mutmut_30": "irfft(Y) without n=2L: Y has L + 1 bins, whose default "
    "length is 2L",
    "eegdm_utils.models.s4d_kernels.xǁ_FFTConvǁforward__mutmut_32": "irfft(Y) without n=2L: Y has L + 1 bins, whose default "
    "length is 2L",
    "eegdm_utils.train.finetuning.x_label_subset__mutmut_7": "`fraction == 2` for `== 1`: a fraction of 1 then draws every "
    "index of every class and sorts them, which is arange",
    "eegdm_utils.train.finetuning.x_label_subset__mutmut_19": "rng.choice(replace=None): None is falsy, as False",
}

_C = "eegdm_utils.eval.controls.x"
_THREADS = "BLAS thread limit changed: speed only, the same numbers"
EQUIVALENT.update({
    **{f"{_C}{n}": _F64 for n in ["_band_power_features__mutmut_4", "_band_power_features__mutmut_6"]},
    **{f"{_C}_cache_probe_features__mutmut_{i}": "a float32 cast dropped: the cache is float32 already" for i in (3, 5)},
    f"{_C}_band_power_features__mutmut_18": "periodogram without axis=-1: -1 is its default",
    f"{_C}_band_power_features__mutmut_25": "freqs[1] + freqs[0] for freqs[1] - freqs[0]: freqs[0] is 0 Hz",
    f"{_C}_band_power_features__mutmut_58": "reshape(len(x), -2): numpy reads any negative size as 'the rest'",
    f"{_C}_cache_probe_features__mutmut_16": "reshape(len(x), -2): numpy reads any negative size as 'the rest'",
    f"{_C}ǁLinearReadoutǁ_standardise__mutmut_7": "nan_to_num without nan=0.0: 0.0 is its default (and the "
    "standardised features are finite otherwise)",
    **{f"{_C}ǁLinearReadoutǁfit__mutmut_{i}": "which RuntimeWarnings are shown: no value changes" for i in (2, 4)},
    **{f"{_C}ǁLinearReadoutǁ{n}": _THREADS for n in ["fit__mutmut_31", "fit__mutmut_32", "predict__mutmut_1",
                                                      "predict__mutmut_2", "log_proba__mutmut_1", "log_proba__mutmut_2"]},
    f"{_C}ǁLinearReadoutǁlog_proba__mutmut_3": "np.errstate(divide=None): which warnings are shown, not the values",
    **{f"{_C}ǁLinearReadoutǁ_fit_path__mutmut_{i}": "warm_start off: each C's fit converges to the same optimum of a "
       "strictly convex problem (to the solver's tolerance), only slower" for i in (8, 11)},
    **{f"{_C}_per_class_recall__mutmut_{i}": "a float cast dropped: np.divide of integers is a true division"
       for i in (3, 5)},
    **{f"{_C}_per_class_recall__mutmut_{i}": "0 / 0 where a class has no lines is NaN, the value the output is "
       "filled with (a RuntimeWarning besides)" for i in (16, 22)},
    f"{_C}_untrained_denoiser__mutmut_1": "fork_rng(devices=None) also saves CUDA generators: the same on CPU, and "
    "the CPU stream is what seeds the weights",
})

_EDF = "eegdm_utils.data.edf.x"
EQUIVALENT.update({
    f"{_EDF}__field__mutmut_7": "'ASCII' for 'ascii': codec names are case-insensitive",
    **{f"{_EDF}__number__mutmut_{i}": "rstrip takes a set of characters: 'XX0XX' strips what '0' strips, and "
       "'XX.XX' what '.' strips, from a number's text" for i in (7, 8)},
    f"{_EDF}__number__mutmut_9": "`>=` width: a text of exactly 8 characters is rewritten with as many decimals as fit, "
    "the same 8 characters",
    f"{_EDF}__number__mutmut_20": "(value <= 0) for (value < 0): differs only at 0, whose text '0' never needs shortening",
    f"{_EDF}__number__mutmut_21": "(value < 1) for (value < 0): differs only in [0, 1), whose texts ('0.123457') never "
    "exceed 8 characters",
    **{f"{_EDF}_write_edf__mutmut_{i}": _F64 for i in (9, 11)},
    f"{_EDF}_write_edf__mutmut_45": "`>=` for `>` against 1e-3 of the range: differs only at exactly that rounding",
    **{f"{_EDF}_write_edf__mutmut_{i}": "one of the two clips dropped: clipping the signal to the physical range and the "
       "codes to the digital range each bound the codes alone" for i in (58, 59, 66, 67)},
})

_DEVICE = "device placement dropped or changed: the same on CPU, where every test runs (a GPU would tell)"
EQUIVALENT.update({
    "eegdm_utils.models.diffusion.x_ddim_scheduler__mutmut_3": "set_alpha_to_one=True dropped: True is diffusers' default",
    **{f"eegdm_utils.models.diffusion.x__coefficients__mutmut_{i}": "sqrt(abar) in float32 instead of float64: the same to "
       "float32 rounding (diffusers stores abar in float32)" for i in (3, 5)},
})

_LFT = "eegdm_utils.models.lft.x"
_COL = "eegdm_utils.foundation.collator.x"
_TOK = "eegdm_utils.foundation.tokenizer.x"
_WEIGHTS = "need_weights changed: the attention output [0] is the same, only the weights come back besides"
EQUIVALENT.update({
    **{f"{_LFT}ǁSelfAttentionBlockǁforward__mutmut_{i}": _WEIGHTS for i in (12, 13)},
    **{f"{_LFT}ǁFusionBlockǁforward__mutmut_{i}": _WEIGHTS for i in (12, 13, 23, 28, 29)},
    **{f"{_LFT}ǁLatentFusionTransformerǁnormalise_tokens__mutmut_{i}": "'none' misspelt: the standardisation then "
       "runs with its initial mean 0 and std 1 (fit_token_statistics leaves them for 'none'), the identity"
       for i in (12, 13)},
    f"{_COL}_mask_tokens__mutmut_3": "`<= N_LEVELS`: id 2000 is never in a sequence (unused by the release)",
    **{f"{_COL}_mask_tokens__mutmut_{i}": "`<` and `<=` against a uniform draw differ with probability 0"
       for i in (12, 22, 26, 27)},
    f"{_COL}_mask_tokens__mutmut_35": "randint(N_LEVELS, ...) is randint(0, N_LEVELS, ...): the same draws",
    f"{_TOK}__checked__mutmut_6": "float64 windows cast to float32: the same ids but where a value lies within float32 "
    "rounding of a bin edge",
    f"{_TOK}__checked__mutmut_7": "integer windows not cast to float: torch's true division and float scaling give "
    "the same ids",
    f"{_TOK}__checked__mutmut_21": "any(+1) on the 2-D reshape is any(-1)",
    **{f"{_TOK}_build_sequences__mutmut_{i}": "dtype=torch.long dropped: torch.full with an integer fill is int64"
       for i in (14, 18)},
})

_SS = "eegdm_utils.models.ssmdp.x"
EQUIVALENT.update({
    f"{_SS}_step_embedding__mutmut_2": "dim / 2 for dim // 2: arange of the float gives the same frequencies",
    **{f"{_SS}_step_embedding__mutmut_{i}": "dtype=float32 dropped from arange: the integers are promoted to the "
       "same float32 values" for i in (13, 16)},
    f"{_SS}ǁGatedS4DBlockǁ__init____mutmut_1": "default is_last=True: every block is built with is_last given",
})
_M = "eegdm_utils.data.montage.x_derive_tcp__mutmut_"
EQUIVALENT.update({
    **{f"{_M}{i}": "a duplicate (or reversed) channel is added as a second edge after the first; the breadth-first "
       "search always takes the first edge, so the first occurrence is used either way" for i in (11, 13, 14, 17)},
    f"{_M}48": "`=` for `+=`: a shortest path never uses a channel twice",
    "eegdm_utils.models.lft.xǁLatentFusionTransformerǁ__init____mutmut_82": "register_buffer(persistent=None): None is "
    "falsy, as False",
})
_P = "eegdm_utils.train.pretraining.x"
EQUIVALENT.update({
    **{f"{_P}__step_generator__mutmut_{i}": "another modulus (3**63, 2**64) for the seed: the same seed below 2**63, "
       "i.e. for every seed under 9e12" for i in (9, 10)},
    f"{_P}ǁSSMDPModuleǁoptimizer_step__mutmut_2": "keyword arguments not passed on: Lightning calls optimizer_step "
    "with positional arguments only",
})
_MET = "eegdm_utils.core.scoring.x"
EQUIVALENT.update({
    **{f"{_MET}_confusion_matrix__mutmut_{i}": "a float64 cast of the weights dropped: np.bincount takes integer "
       "weights as well" for i in (16, 18)},
    f"{_MET}_weighted_f1__mutmut_2": "astype(None) is astype(float64)",
    **{f"{_MET}_weighted_f1__mutmut_{i}": "0 / 0 for a class never predicted (or never true) gives NaN, which the "
       "F1 step masks (NaN is not > 0) and a class without lines weighs 0" for i in (17, 19, 29, 31)},
    **{f"eegdm_utils.models.lft.x_no_decay_groups__mutmut_{i}": "the bias test misspelt: every bias is 1-D and already "
       "caught by p.ndim < 2" for i in (10, 11)},
})
EQUIVALENT["eegdm_utils.train.finetuning.xǁClassifierModuleǁoptimizer_step__mutmut_2"] = (
    "keyword arguments not passed on: Lightning calls optimizer_step with positional arguments only")

# Survivors looked at and left, with the reason (they count as survived, not as equivalent).
KNOWN_SURVIVORS: dict[str, str] = {
    **{f"{_E2I}frechet_distance__mutmut_{i}": "the regularised branch runs only when scipy's sqrtm returns a "
       "non-finite matrix, which no small test input produces" for i in range(39, 47)},
    f"{_C}ǁLinearReadoutǁ_fit_path__mutmut_7": "max_iter 100 (sklearn's default) for 1000: the same solutions "
    "where lbfgs converges within 100 iterations, as it does on the test problems",
    **{f"eegdm_utils.models.diffusion.x__coefficients__mutmut_{i}": _DEVICE for i in (2, 4, 6)},
    "eegdm_utils.train.pretraining.xǁSSMDPModuleǁvalidation_step__mutmut_5": _DEVICE,
    **{f"{_P}ǁSSMDPModuleǁdiffusion_loss__mutmut_{i}": _DEVICE for i in (8, 13, 18, 22)},
    f"{_P}__step_generator__mutmut_2": _DEVICE,
    f"{_P}ǁSSMDPModuleǁtraining_step__mutmut_5": _DEVICE,
    **{f"eegdm_utils.models.ssmdp.x_step_embedding__mutmut_{i}": _DEVICE for i in (12, 15)},
    **{f"{_COL}_mask_tokens__mutmut_{i}": _DEVICE for i in (8, 11, 16, 19, 34, 39)},
    **{f"{_TOK}_build_sequences__mutmut_{i}": _DEVICE for i in (15, 19)},
    **{f"{_LFT}ǁ{n}": "a dropout module or rate dropped: visible only when training with dropout > 0 (0 by default "
       "and in the paper configuration)" for n in ["FFNǁ__init____mutmut_7", "SelfAttentionBlockǁ__init____mutmut_11",
                                                   "FusionBlockǁ__init____mutmut_12", "FusionBlockǁ__init____mutmut_22"]},
    **{f"eegdm_utils.core.scoring.x_weighted_f1__mutmut_{i}": "np.divide without out=: the entries the where= mask "
       "skips are left uninitialised, and whether that shows depends on what the memory held (a test cannot "
       "pin it down)" for i in (12, 16, 24, 28, 36, 40)},
    "eegdm_utils.models.s4d.xǁS4Dǁforward__mutmut_7": "`.to(u.dtype)` dropped: a no-op for float32 input, the only dtype "
    "the CPU tests run (matters under bf16 autocast on a GPU)",
}

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", 37: "killed", None: "not checked"}


def mutant_glob(module: str) -> str:
    return MODULES[module][0][:-3].replace("/", ".") + ".*"


def results() -> dict[str, dict[str, str]]:
    """{module: {mutant: status}} from mutmut's files in mutants/."""
    out = {}
    for module, (path, _) in MODULES.items():
        meta = REPO / "mutants" / (path + ".meta")
        if meta.exists():
            codes = json.loads(meta.read_text())["exit_code_by_key"]
            out[module] = {k: STATUS.get(v, "suspicious") for k, v in codes.items()}
    return out


def write_report(by_module: dict[str, dict[str, str]], runs: list[dict]) -> float | None:
    rows, total = [], Counter()
    survivors = []
    for module, mutants in by_module.items():
        c = Counter()
        for name, status in mutants.items():
            if status in ("survived", "no tests", "not checked", "suspicious") and name in EQUIVALENT:
                c["equivalent"] += 1
            elif status in ("killed", "timeout"):
                c["killed"] += 1
            else:
                c[status] += 1
                if status in ("survived", "no tests", "suspicious"):
                    survivors.append((module, name, status))
        c["all"] = len(mutants)
        total.update(c)
        scored = c["all"] - c["equivalent"] - c["not checked"]
        rows.append(f"| {module} | {c['all']} | {c['killed']} | {c['survived']} | {c['no tests']} | {c['equivalent']} "
                    f"| {c['not checked']} | {100 * c['killed'] / scored:.1f}% |" if scored else
                    f"| {module} | {c['all']} | - | - | - | - | {c['not checked']} | not run |")
    scored = total["all"] - total["equivalent"] - total["not checked"]
    score = total["killed"] / scored if scored else None
    known = {name for mutants in by_module.values() for name in mutants}
    stale = sorted(set(EQUIVALENT) - known) + sorted(set(KNOWN_SURVIVORS) - known)
    if stale:
        print("triage entries that name no mutant (the code moved on? renumber them):", *stale, sep="\n  ")
    missing = [m for m in MODULES if m not in by_module]
    lines = [
        "# Mutation testing of the core modules",
        "",
        "Generated by `make mutation` (tools/mutation.py); do not edit by hand. "
        f"mutmut {version('mutmut')}, report of {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores, from the results "
        "in mutants/ of these runs (a run tests the mutants not yet tested, and again those it names):",
        "",
        *[f"- `{r['command']}` ({r['date']}, {r['wall_min']} min)" for r in runs],
        "",
        "Each mutant is one small change to the package (an operator, a constant, an argument dropped). It is",
        "*killed* when a test fails (or times out). A mutant runs the tests that call its function (mutmut's",
        "coverage map) among its module's test files (MODULES in tools/mutation.py; tests/conftest.py deselects",
        "the others). *Survived*: every such test passed; *no tests*: none calls the function; *equivalent*: no",
        "test can tell it from the original (listed below with the reason); *not checked*: not run yet (a run",
        "stopped for time). Score: killed / (all - equivalent - not checked). Lines that only build error",
        "messages or progress text are not mutated (pyproject.toml, do_not_mutate_patterns).",
        "",
        "| module | mutants | killed | survived | no tests | equivalent | not checked | score |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        f"| **all** | {total['all']} | {total['killed']} | {total['survived']} | {total['no tests']} | {total['equivalent']} "
        f"| {total['not checked']} | **{100 * score:.1f}%** |" if score is not None else "| **all** | - | | | | | | |",
        "",
    ]
    if missing:
        lines += [f"Not run: {', '.join(missing)}.", ""]
    lines += ["## Survivors (with the reason where one was looked at and left)", ""]
    lines += [f"- `{name}` ({status})" + (f": {KNOWN_SURVIVORS[name]}" if name in KNOWN_SURVIVORS else "")
              for _, name, status in survivors] or ["None."]
    lines += ["", "## Equivalent mutants", ""]
    lines += [f"- `{name}`: {why}" for name, why in EQUIVALENT.items()] or ["None."]
    REPORT.write_text("\n".join(lines) + "\n")
    return score


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", choices=[[], *MODULES], help="default: all")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    modules = args.modules or list(MODULES)
    command = "make mutation" + (f" MODULES='{' '.join(args.modules)}'" if args.modules else "")
    wall = None
    if not args.report_only:
        start = time.perf_counter()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "EEGDM_PROGRESS": "0"}
        mutmut = [str(Path(sys.executable).with_name("mutmut")), "run", "--max-children", str(args.max_children)]
        rc = subprocess.call(["nice", "-n", "19", *mutmut, *[mutant_glob(m) for m in modules]], cwd=REPO, env=env)
        wall = time.perf_counter() - start
        if rc:
            print(f"mutmut exited with {rc}", file=sys.stderr)
    runs_file = REPO / "mutants" / "mutation-runs.json"
    runs = json.loads(runs_file.read_text()) if runs_file.exists() else []
    if not args.report_only:
        runs.append({"command": command, "date": time.strftime("%Y-%m-%d %H:%M"), "wall_min": round(wall / 60, 1)})
        runs_file.write_text(json.dumps(runs, indent=1))
    score = write_report(results(), runs)
    print(f"{REPORT.relative_to(REPO)}: " + (f"{100 * score:.1f}% killed" if score is not None else "no results"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
