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
	@echo "make lab        Vagrant hosts + deployment + the demo scenario"
	@echo "make test       install what is needed, then every check"
	@echo "make box        build the hosts' Vagrant box (lxc provider) here, once"
	@echo "make lab-up / lab-down / lab-destroy   vagrant up / halt / destroy -f"
	@echo "make local-up / local-down             the topology as local processes"
	@echo "make artifacts  Hazelcast, MapStore and JDBC jars and the wheelhouse for the hosts"
	@echo "make mapstore-test   the MapStore's JUnit tests (a throwaway PostgreSQL)"
	@echo "make lint       ruff, mypy, yamllint, ansible-lint"
	@echo "make bench      benchmark: table, bench-results/latest.{json,png}"

.PHONY: system-deps
system-deps:
	@scripts/system-deps.sh

$(STAMP): pyproject.toml tools/pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' -e ./tools
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
	$(BIN)/ruff check src tools/src tests
	$(BIN)/ruff format --check src tools/src tests
	$(BIN)/mypy

# The box for Vagrant's lxc provider: built here (the hosts have no internet), cached.
.PHONY: box
box: system-deps
	@scripts/box.sh

# Ansible checks; molecule needs root and Vagrant (it brings the hosts up and destroys them).
.PHONY: yamllint ansible-lint vagrant-validate molecule
yamllint: $(STAMP)
	$(BIN)/yamllint -s .
ansible-lint: $(STAMP)
	$(BIN)/ansible-lint
vagrant-validate: $(STAMP)
	vagrant validate --ignore-provider
molecule: $(STAMP) artifacts box
	$(BIN)/molecule test

# promtool from Debian's prometheus package, unpacked (not installed), for the role's checks.
.PHONY: promtool
promtool:
	@scripts/promtool.sh .cache/tools

.PHONY: pytest
pytest: $(STAMP) artifacts box promtool
	$(BIN)/pytest -ra --durations=30

# `make test` runs two pipelines at once, each command's output kept together (the 2 cores
# are not both busy while the hosts boot, deploy and wait for their clusters):
# - test-local: lint, `vagrant validate`, the MapStore's JUnit tests, then every test that
#   needs no Vagrant host;
# - test-hosts: molecule makes the hosts and tests a first deployment on them (create,
#   converge, idempotence, verify with the scenario) and keeps them for the deploy tests,
#   which start from that converged deployment (HAZELOG_DEPLOYED); then, and after any
#   failure on the way, molecule destroys them, so no container outlives the run.
.PHONY: test test-local test-hosts
# The Debian packages and the venv first, alone (two apt-get at once would fight over dpkg's
# lock); then test-hosts first, so that its box (on a fresh machine) starts before the lint.
test: $(STAMP)
	$(MAKE) --no-print-directory -j2 --output-sync=line test-hosts test-local
# mapstore-test from the recipe, not as a prerequisite: Maven must not build mapstore/ for it
# while `artifacts` builds the jar there.
test-local: lint vagrant-validate $(STAMP) artifacts promtool
	$(MAKE) --no-print-directory mapstore-test
	$(BIN)/pytest -ra --durations=15 --ignore=tests/deploy
DESTROY_HOSTS := { $(BIN)/molecule destroy; vagrant destroy -f; }
# It starts from fresh hosts and a fresh molecule state (an interrupted run leaves molecule
# believing its hosts exist, and it would skip create).
test-hosts: $(STAMP) artifacts box promtool
	$(DESTROY_HOSTS)
	$(BIN)/molecule test --destroy=never || { $(DESTROY_HOSTS); exit 1; }
	HAZELOG_DEPLOYED=1 $(BIN)/pytest -ra --durations=20 tests/deploy || { $(DESTROY_HOSTS); exit 1; }
	$(DESTROY_HOSTS)

.PHONY: bench
bench: $(STAMP) artifacts
	$(BIN)/python -m hazelog_tools.bench

.PHONY: local-up local-down
local-up: $(STAMP) artifacts
	$(HAZELOG) local up --jmx-exporter $(ARTIFACTS)/jmx_prometheus_javaagent-1.0.1.jar
local-down: $(STAMP)
	$(HAZELOG) local down

.PHONY: lab-up lab-down lab-destroy
lab-up: box
	vagrant up
lab-down:
	vagrant halt
lab-destroy:
	vagrant destroy -f

# The main job: hosts, deployment (ansible.cfg's default inventory), the demo scenario.
.PHONY: lab
LAB_FACADE := http://192.168.56.10:8080/
lab: lab-up artifacts
	$(BIN)/ansible-playbook site.yml
	$(BIN)/ansible-playbook playbooks/scenario.yml
	@echo
	@echo "The hosts are deployed. Try, as a Vagrant user would:"
	@echo "  vagrant status"
	@echo "  curl -d hello $(LAB_FACADE)"
	@echo "  curl $(LAB_FACADE)"
	@echo "  vagrant ssh logging3 -c 'sudo systemctl stop logging@20002'"
	@echo "  vagrant ssh logging3 -c 'systemctl status hazelcast@20002'"
	@echo "  vagrant ssh logging1 -c 'journalctl -u logging@20000'"
	@echo "  vagrant ssh logging3 -c 'sudo systemctl start logging@20002'"
	@echo "  curl -H 'Accept: application/json' $(LAB_FACADE)status"
	@echo "  open http://192.168.56.13:9090/alerts   # Prometheus: targets, alerts"
	@echo "  ansible-playbook playbooks/rolling-restart.yml"
	@echo "  vagrant halt          # make lab-down"
	@echo "  vagrant destroy -f    # make lab-destroy"
