# Two commands do everything on a fresh machine (Python 3.11, no conda needed):
#   make run    set up .venv if needed, then run the collection with params/default.yaml
#   make test   set up .venv if needed, then unit tests and nbval on notebooks/
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KERNEL := eegdm
PARAMS ?= params/default.yaml
RUN_DIR ?= runs/default
SEEDS ?= 0 1 2
# $(call notebook,name,output name,extra arguments): run one notebook into RUN_DIR with PARAMS (tools/run.py:
# only the keys the notebook declares reach it; a -p it does not declare is an error)
notebook = $(BIN)/python tools/run.py $(PARAMS) $(RUN_DIR) --notebook $(1) --out $(2) $(3)

.PHONY: setup demo run full paper-dry-run test sweep notebooks clean compute-curve compute-step backbone-curve reference-recipe ablations choices scale-curves \
	mutation

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, got " + sys.version'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (eegdm)" >/dev/null
	@touch $@

# The tiers (tools/run.py prints notebook n of N, the time elapsed and an estimate of what is left; then
# tools/results.py writes RUN_DIR/RESULTS.md from the run's metrics, and publishes it: results/<tier>/, and for
# `make run` with params/default.yaml the committed RESULTS.md and the README's generated blocks):
#   make demo   notebooks 10 to 50 on a smaller corpus, one seed (params/demo.yaml, runs/demo)
#   make run    the whole collection at the default scale, seeds 0-2 (params/default.yaml, runs/default)
#   make full   the same with seeds 0-4 and the sections make run trims (tools/run.py FULL; runs/full)
demo: setup
	$(BIN)/python tools/run.py params/demo.yaml runs/demo --plan demo --seeds 0
	$(BIN)/python tools/results.py runs/demo --publish

run: setup
	$(BIN)/python tools/run.py $(PARAMS) $(RUN_DIR) --plan run --seeds $(SEEDS)
	$(BIN)/python tools/results.py $(RUN_DIR) $(if $(filter params/default.yaml,$(PARAMS)),--publish,)

# The paper configuration, dry: params/paper.yaml on the CPU with only the data size, batch sizes, step counts and
# seeds made small (tools/run.py PAPER_DRY), every notebook once with the paper's models, then the paper's parameter
# counts checked. What a user with a GPU and TUEV runs first (runs/paper_dry). Slow on 2 cores: the paper's models
# are 6-300 M parameters. Notebooks 10-80 pass from a clean clone in 23 min (70's DDPM of 49 steps at paper size:
# 8 min); notebook 85 holds the 300 M-parameter stage-A encoder in several copies with their Adam state and needs
# more than 20 GB of host memory in its ablations, so a 24 GB CPU host stops there (a GPU host of 80 GB is the target).
paper-dry-run: setup
	$(BIN)/python tools/run.py params/paper.yaml runs/paper_dry --plan paper-dry

full: setup
	$(BIN)/python tools/run.py $(PARAMS) runs/full --plan full --seeds 0 1 2 3 4
	$(BIN)/python tools/results.py runs/full

# Notebook 40 once per seed, each into RUN_DIR/lft/seed_<N>
sweep: setup
	@for seed in $(SEEDS); do $(call notebook,40_finetune_lft,40_finetune_lft_seed$$seed,-p seed $$seed) || exit 1; done

# Pretraining compute curve (after `make run`): notebooks 20, 30 and 45 again with other numbers of
# pretraining steps, each into RUN_DIR/compute/steps_<N> (figures there too), reusing RUN_DIR's
# store and untrained-backbone cache; then one table and figure over 0, those, and RUN_DIR's own.
COMPUTE_STEPS ?= 200 3200
compute-curve: setup
	@for steps in $(COMPUTE_STEPS); do d=$(RUN_DIR)/compute/steps_$$steps; mkdir -p $$d; \
		ln -sfn ../../store $$d/store; ln -sfn ../../cache_untrained $$d/cache_untrained; \
		$(MAKE) --no-print-directory compute-step PARAMS=$(PARAMS) RUN_DIR=$$d STEPS=$$steps || exit 1; done
	$(BIN)/python tools/compute_curve.py $(RUN_DIR) $(FIGURES_DIR)

FIGURES_DIR ?= figures
# one point of a curve: pretrain, cache, the probes (45) and the LFT of seed 0 (40, no EEGNet)
STEP_ARGS ?=
compute-step:
	@$(call notebook,20_pretrain_ssmdp,20_pretrain_ssmdp,-p pretrain_steps $(STEPS) $(STEP_ARGS) -p figures_dir ../$(RUN_DIR)/figures)
	@$(call notebook,30_cache_latents,30_cache_latents,-p untrained_control $(UNTRAINED) -p figures_dir ../$(RUN_DIR)/figures)
	@$(call notebook,45_controls,45_controls,-p diagnose_variants False -p figures_dir ../$(RUN_DIR)/figures)
	@$(MAKE) --no-print-directory compute-step-lft PARAMS=$(PARAMS) RUN_DIR=$(RUN_DIR) UNTRAINED=$(UNTRAINED)
compute-step-lft:
	@$(call notebook,40_finetune_lft,40_finetune_lft_seed0,-p seed 0 -p train_baseline False -p untrained_control $(UNTRAINED) $(LFT_ARGS))
UNTRAINED ?= False

# Backbone width/depth curve (after `make run`): the same chain for other backbones (d_model x
# layers), each into RUN_DIR/backbone/d<D>_l<L> with its own untrained control; then one table and figure.
BACKBONES ?= 16x4 64x4 32x2 32x8
backbone-curve: setup
	@for b in $(BACKBONES); do d=$(RUN_DIR)/backbone/d$${b%x*}_l$${b#*x}; mkdir -p $$d; ln -sfn ../../store $$d/store; \
		$(MAKE) --no-print-directory compute-step PARAMS=$(PARAMS) RUN_DIR=$$d STEPS=$$(awk '/^pretrain_steps:/ {print $$2}' $(PARAMS)) \
		UNTRAINED=True STEP_ARGS="-p d_model $${b%x*} -p n_layer $${b#*x}" || exit 1; done
	$(BIN)/python tools/compute_curve.py $(RUN_DIR) $(FIGURES_DIR)

# The reference's LFT recipe (params/paper.yaml's LFT settings) on RUN_DIR's cache, seed 0 (and the
# untrained control), into RUN_DIR/recipe
REFERENCE_LFT := -p lft_batch_size 256 -p channel_norm none -p lft_init uniform -p class_weight none -p channel_embed none \
	-p lft_tokens 16 -p lft_heads 8 -p lft_final_blocks 8 -p max_lr 5.0e-4 -p finetune_epochs 50 -p warmup_epochs 20 -p patience 3
reference-recipe: setup
	@d=$(RUN_DIR)/recipe; mkdir -p $$d; for f in store cache cache_untrained pretrain; do ln -sfn ../$$f $$d/$$f; done
	@$(MAKE) --no-print-directory compute-step-lft PARAMS=$(PARAMS) RUN_DIR=$(RUN_DIR)/recipe UNTRAINED=True LFT_ARGS="$(REFERENCE_LFT)"

# Design choices decided on validation (after `make run`): the LFT's channel embedding (notebook 40 per seed and
# candidate, all labels, into RUN_DIR/choices/channel_embed_<name>), and in RUN_DIR/choices/e2i the
# stage-A mask ratio (notebook 80's probes) and the third EEG-to-image method (notebook 85's validation
# scores); tools/choices.py compares them with PARAMS (no test score enters)
CHOICE_SEEDS ?= $(SEEDS)
choices: setup
	@for e in none channel mirror; do for s in $(CHOICE_SEEDS); do \
		$(call notebook,40_finetune_lft,choices/nb/channel_embed_$${e}_seed$$s,-p seed $$s -p channel_embed $$e \
			-p out_folder choices/channel_embed_$$e -p train_baseline False -p untrained_control False \
			-p label_fractions "[1.0]") || exit 1; done; done
	@d=$(RUN_DIR)/choices/e2i; mkdir -p $$d; ln -sfn ../../store $$d/store; f=$$(cd $$d && pwd)/figures; \
		$(BIN)/python tools/run.py $(PARAMS) $$d --notebook 80_eeg_encoder_pretrain -p e2i_mask_ratio 0.75 -p e2i_mask_ablations "[0.25, 0.5]" \
			-p figures_dir $$f && \
		$(BIN)/python tools/run.py $(PARAMS) $$d --notebook 85_eeg_to_image -p e2i_both True -p figures_dir $$f
	$(BIN)/python tools/choices.py $(RUN_DIR) $(PARAMS)

# Label- and pretraining-data scaling curves (after `make run`: its backbone, cache and settings): a larger
# simulated corpus from the same generator, one fixed test set, into RUN_DIR/scale/ (a fit that exists is
# skipped: a stopped sweep resumes); SCALE_ARGS changes the points, e.g. "--labelled 22 88 --seeds 0 1"
SCALE_ARGS ?=
scale-curves: setup
	$(BIN)/python tools/scale_curves.py $(RUN_DIR) $(PARAMS) --figures $(FIGURES_DIR) $(SCALE_ARGS)

# Ablations (after `make run`: notebooks 10-45 have run in RUN_DIR): notebook 60 for every variant and
# seed, each into RUN_DIR/ablations/nb/<variant>_seed<N>.ipynb, then one table and the figures.
# the paper's variants first, ours after; seed by seed over every variant, so that a sweep stopped early
# leaves each variant with as many seeds as the others (RESULTS.md names what it did not reach)
ABLATIONS ?= full first_half second_half first_quarter second_quarter third_quarter fourth_quarter mean_fusion \
	rate_190 rate_180 step1 step2 step3 filter_std gate_mean filter_mean no_mulaw linear_schedule no_fusion \
	noise_injection epoch_matched pool_100 pool_1000 every_other
ABLATION_SEEDS := $(if $(filter command line environment,$(origin SEEDS)),$(SEEDS),0 1 2)
ablations: setup
	@mkdir -p $(RUN_DIR)/ablations/nb
	@for s in $(ABLATION_SEEDS); do for v in $(ABLATIONS); do \
		$(call notebook,60_ablations,ablations/nb/$${v}_seed$$s,-p variant $$v -p seed $$s) || exit 1; done; done
	$(BIN)/python tools/ablations.py $(RUN_DIR) $(FIGURES_DIR)

test: setup
	rm -rf runs/smoke
	EEGDM_PROGRESS=0 $(BIN)/python -m pytest -q tests notebooks --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg --durations=10

# Mutation testing of the core modules (mutmut; from scratch about two hours on 2 cores, the slow part being
# the modules whose tests build stores or train: s4d, store, preprocess, cache, pretrain). Results are kept in
# mutants/, so a rerun tests only what is new; writes docs/mutation.md. MODULES="mulaw edf" runs some of them.
MODULES ?=
mutation: setup
	$(BIN)/python tools/mutation.py $(MODULES)

# Re-run every notebook at its defaults (smoke scale) and keep the outputs: nbval's reference.
notebooks: setup
	$(if $(NB),,rm -rf runs/smoke)
	cd notebooks && for nb in $(or $(NB),*.ipynb); do echo "== $$nb"; \
		EEGDM_PROGRESS=0 ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace --log-level=WARN \
		--ExecutePreprocessor.kernel_name=$(KERNEL) --ExecutePreprocessor.timeout=1800 $$nb || exit 1; done

clean:
	rm -rf runs/smoke
