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
	@echo "make artifacts  Hazelcast, MapStore and JDBC jars and the wheelhouse for the hosts"
	@echo "make mapstore-test   the MapStore's JUnit tests (a throwaway PostgreSQL)"
	@echo "make lint       ruff, mypy, yamllint, ansible-lint"
	@echo "make bench      benchmark: table, bench-results/latest.{json,png}"

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

# The MapStore's JUnit tests start their own PostgreSQL (initdb in a temporary directory).
.PHONY: mapstore-test
mapstore-test: $(STAMP)
	mvn -q -B -f mapstore/pom.xml test

.PHONY: lint python-lint
lint: python-lint yamllint ansible-lint
python-lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

# Ansible checks; molecule needs root and the lab tools (it brings the lab up and destroys it).
.PHONY: yamllint ansible-lint vagrant-validate molecule
yamllint: $(STAMP)
	$(BIN)/yamllint -s .
ansible-lint: $(STAMP)
	$(BIN)/ansible-lint
vagrant-validate: $(STAMP)
	vagrant validate --ignore-provider
molecule: $(STAMP) artifacts
	$(BIN)/molecule test

.PHONY: pytest
pytest: $(STAMP) artifacts
	$(BIN)/pytest -ra

.PHONY: test
test: lint vagrant-validate mapstore-test pytest molecule

.PHONY: bench
bench: $(STAMP) artifacts
	$(BIN)/python -m hazelog.bench

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
LAB_FACADE := http://192.168.77.10:8080/
lab: lab-up artifacts
	$(BIN)/ansible-playbook -i inventory/lab site.yml
	$(BIN)/ansible-playbook -i inventory/lab playbooks/scenario.yml
	@echo
	@echo "The lab is deployed. Facade: $(LAB_FACADE)"
	@echo "  curl -d 'hello' $(LAB_FACADE)"
	@echo "  curl $(LAB_FACADE)"
	@echo "  $(HAZELOG) lab ssh logging3 systemctl stop logging@20002"
	@echo "  $(HAZELOG) lab ssh logging3 systemctl status hazelcast@20002"
	@echo "  $(HAZELOG) lab ssh logging1 journalctl -u logging@20000"
	@echo "  $(HAZELOG) lab ssh logging3 systemctl start logging@20002"
	@echo "  make lab-down    # stop the lab"
