# veritas.chaos — entry points. See README.md.
SHELL := /bin/bash
REPO := $(CURDIR)
VENV := $(REPO)/.venv
PY := $(VENV)/bin/python
export VERITAS_LAB_CACHE ?= $(HOME)/.cache/veritas-lab
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(REPO)/ansible.cfg

.PHONY: help venv collection-link lab-build lab-up lab-down lab-status test test-unit scenarios-check sanity lint galaxy gameday gameday-canary molecule restore-soak bench clean

help:
	@echo "make gameday    set up the lab and run playbooks/gameday-bluegreen.yml"
	@echo "make test       set up everything, run all tests, tear the lab down"
	@echo "make lab-up | lab-down | lab-status"

$(VENV)/.stamp: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.stamp

# Exposes the repo root as the collection veritas.chaos for ansible and pytest.
collection-link:
	@mkdir -p .collections/ansible_collections/veritas
	@ln -sfn ../../.. .collections/ansible_collections/veritas/chaos

lab-build:
	lab/bin/build-binaries.sh

lab-up: venv lab-build
	lab/bin/lab-up.sh

lab-down:
	lab/bin/lab-down.sh

lab-status:
	lab/bin/lab-status.sh

# Brings the lab up, runs every test, and tears the lab down even when tests fail.
test: venv collection-link lab-build
	lab/bin/run-tests.sh

test-unit: venv collection-link
	$(PY) -m pytest -q tests/unit

# The game-day registry (scenarios/registry.yml) against the playbooks, roles, molecule and README.
scenarios-check: venv
	$(PY) scenarios/registry.py check

sanity: venv
	lab/bin/sanity.sh

lint: venv collection-link
	$(VENV)/bin/ansible-lint --profile production

# The collection as Galaxy sees it: role READMEs, changelog, the built tarball (installs, ansible-doc),
# antsibull-docs lint-collection-docs and galaxy-importer (tests/galaxy/run.sh; about a minute).
galaxy: venv
	tests/galaxy/run.sh

# The main job: the blue-green game days (runbook scenarios 3, 5, 6) on the lab.
# The journal's last line names the report (reports/<UTC time>-gameday-bluegreen/report.md).
gameday: venv collection-link lab-up
	@set -o pipefail; $(VENV)/bin/ansible-playbook -i inventories/lab playbooks/gameday-bluegreen.yml \
	  | tee .lab/logs/gameday-bluegreen.log; rc=$$?; \
	  echo; echo "results: $$(grep -o 'reports/[^ ]*report.md' .lab/logs/gameday-bluegreen.log | tail -1)"; exit $$rc

# The game days' molecule scenarios (each game day, then its negative run) on a running lab.
molecule: venv collection-link
	molecule/run.sh

# Game days killed (SIGKILL) at random points after a release by hand, then the restore playbook;
# prints one line per trial and the count. Needs the lab up (make lab-up).
RUNS ?= 30
restore-soak: venv collection-link
	$(PY) tests/restore/kill_restore.py --runs $(RUNS)

gameday-canary: venv collection-link lab-up
	$(VENV)/bin/ansible-playbook -i inventories/lab playbooks/gameday-canary.yml

# Benchmarks run separately from the tests (they need the lab up).
bench: venv collection-link
	$(PY) bench/bench_proxy_latency.py --lab --duration 30
	$(PY) bench/bench_traffic_split.py

clean: lab-down
	rm -rf .lab .collections
