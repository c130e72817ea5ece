# One-command entry points. Every target creates .venv and installs the package on first use;
# the install is redone only when pyproject.toml changes (the stamp records its hash).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-16)

SUBMISSION ?= clb_imdn
DATA ?= samples
DEVICE ?= auto
SPLIT ?= val
ZOO ?= $(ESR_NTIRE2022_ZOO)
RUN_DIR ?= results/runs/latest
PYTEST_ARGS ?=
TRAIN_ARGS ?=
EVALUATE_ARGS ?=

.PHONY: help venv test bench lint evaluate report table2 train clean

help:
	@echo "make evaluate SUBMISSION=clb_imdn [DATA=samples|/path/to/DIV2K] [DEVICE=auto|cuda|cpu] [EVALUATE_ARGS=--save-images]"
	@echo "make test        run the test suite (builds .venv on first use)"
	@echo "make bench       run the pytest-benchmark suite"
	@echo "make lint        ruff"
	@echo "make report [RUN_DIR=results/runs/latest]   HTML report of a run: RUN_DIR/report.html"
	@echo "make table2 DATA=/path/to/DIV2K ZOO=/path/to/NTIRE2022_ESR"
	@echo "make train DATA=/path/to/DIV2K [TRAIN_ARGS='--set optim.iterations=1000']"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,ray,deploy,zoo]'
	@rm -f $(VENV)/.installed-*
	@touch $@

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m pytest -q --benchmark-enable --benchmark-only tests $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check harness tests benchmarks
	$(BIN)/ruff format --check harness tests benchmarks

# The leaderboard is printed even when a submission failed (evaluate exits 1, and so does make);
# not after a usage error (exit 2), when no new results were written.
evaluate: $(STAMP)
	$(BIN)/esr evaluate $(SUBMISSION) --data $(DATA) --split $(SPLIT) --device $(DEVICE) --out $(RUN_DIR) $(EVALUATE_ARGS); \
	status=$$?; \
	if [ $$status -le 1 ]; then $(BIN)/esr leaderboard $(RUN_DIR) --style ntire2022 --published; fi; \
	exit $$status

# One self-contained page: leaderboard, plot, verdicts, per-image table, visual comparisons.
report: $(STAMP)
	$(BIN)/esr report $(RUN_DIR) --out $(RUN_DIR)/report.html

table2: $(STAMP)
	$(BIN)/esr evaluate ntire2022:table2 imdn_baseline --zoo $(ZOO) --data $(DATA) --split val --device $(DEVICE) --out results/runs/table2-val
	$(BIN)/esr evaluate ntire2022:table2 imdn_baseline --zoo $(ZOO) --data $(DATA) --split test --device $(DEVICE) --out results/runs/table2-test
	$(BIN)/esr leaderboard results/runs/table2-val results/runs/table2-test --style table2 --published

# Prune -> stage 1 -> stage 2 -> collapse -> evaluate; --resume makes a rerun continue after an interruption.
# TRAIN_ARGS reach both stages, e.g. TRAIN_ARGS="--set optim.iterations=1000 --nproc 4".
train: $(STAMP)
	$(BIN)/esr prune --blocks 7 --out results/runs/train/imdn_pruned_nb7.pth
	$(BIN)/esr train --config configs/clb_imdn_stage1.yaml --data $(DATA) --resume $(TRAIN_ARGS)
	$(BIN)/esr train --config configs/clb_imdn_stage2.yaml --data $(DATA) --resume $(TRAIN_ARGS)
	$(BIN)/esr collapse results/runs/train/clb_imdn_stage2/best.pth --out results/runs/train/clb_imdn_collapsed.pth
	$(BIN)/esr evaluate clb_imdn --weights results/runs/train/clb_imdn_collapsed.pth --data $(DATA) --device $(DEVICE)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
