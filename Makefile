# hazelog: the two commands users need are `make lab` and `make test`; the rest are steps.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HAZELOG := $(BIN)/hazelog
STAMP := $(VENV)/.installed-stamp
ARTIFACTS := .cache/artifacts

export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help
help:
	@echo "make lab        local lab hosts + deployment + the demo scenario"
	@echo "make test       install what is needed, then every check"
	@echo "make lab-up / lab-down / lab-destroy   the lab hosts alone"
	@echo "make local-up / local-down             the topology as local processes"
	@echo "make artifacts  Hazelcast jar and wheelhouse for the hosts"
	@echo "make lint       ruff, mypy, yamllint, ansible-lint"

.PHONY: system-deps
system-deps:
	@scripts/system-deps.sh

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

.PHONY: venv
venv: $(STAMP)

.PHONY: artifacts
artifacts: $(STAMP)
	@scripts/artifacts.sh $(ARTIFACTS)

.PHONY: lint
lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

.PHONY: pytest
pytest: $(STAMP) artifacts
	$(BIN)/pytest -ra

.PHONY: test
test: lint pytest

.PHONY: local-up local-down
local-up: $(STAMP) artifacts
	$(HAZELOG) local up
local-down: $(STAMP)
	$(HAZELOG) local down

.PHONY: lab-up lab-down lab-destroy
lab-up: $(STAMP)
	$(HAZELOG) lab up
lab-down: $(STAMP)
	$(HAZELOG) lab down
lab-destroy: $(STAMP)
	$(HAZELOG) lab destroy

.PHONY: lab
lab: lab-up artifacts
	@echo "make lab: the deployment comes with the Ansible issue; the lab hosts are up."
