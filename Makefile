# veritas.chaos — entry points. See README.md.
SHELL := /bin/bash
REPO := $(CURDIR)
VENV := $(REPO)/.venv
PY := $(VENV)/bin/python
export VERITAS_LAB_CACHE ?= $(HOME)/.cache/veritas-lab
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(REPO)/ansible.cfg

.PHONY: help venv collection-link lab-build lab-up lab-down lab-status test test-unit test-lab sanity lint gameday bench clean

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

sanity: venv
	lab/bin/sanity.sh

lint: venv collection-link
	$(VENV)/bin/ansible-lint --profile production

gameday: venv collection-link lab-up
	$(VENV)/bin/ansible-playbook -i inventories/lab playbooks/gameday-bluegreen.yml

clean: lab-down
	rm -rf .lab .collections
