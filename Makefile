# Switchyard developer entry points. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COLLECTION_LINK := build/collections/ansible_collections/switchyard/release
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
TARBALL := dist/switchyard-release-$(VERSION).tar.gz
PYTEST_ARGS ?=

export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv collection testbed testbed-down testbed-status lint unit integration e2e test build demo demo-down bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(BIN)/.installed: requirements/controller.txt requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/controller.txt -c requirements/constraints.txt
	touch $@

venv: $(BIN)/.installed ## create .venv from the pinned requirements

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../../.. $@

collection: $(COLLECTION_LINK) ## make this checkout importable as switchyard.release

testbed: venv ## bring up Docker, Compose v2, the local registry and the images (idempotent)
	bash tests/testbed/testbed.sh up

testbed-down: ## stop what the testbed started (keeps cached images)
	bash tests/testbed/testbed.sh down

testbed-status: ## report the testbed's components, versions and image digests
	bash tests/testbed/testbed.sh status

lint: venv collection ## ansible-lint (production), ansible-test sanity, ruff
	bash tests/lint.sh

unit: venv collection ## unit tests (no external components)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

integration: venv collection ## integration tests against the testbed
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

e2e: venv collection ## end-to-end tests of the playbooks on the testbed
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

# The tests run on TEST_WORKERS workers (pytest-xdist, a test file per worker, the longest files first:
# tests/conftest.py orders them and --no-loadscope-reorder keeps xdist from reordering them by test count), then the
# tests marked serial (a Docker daemon restart, the testbed's re-run, the measurement under load) one at a time with
# the machine to themselves. More workers would not help on a 2-core machine: the suite keeps it ~97 % busy (the
# modules' Python and the controller's forks; docs/BENCHMARKS.md, the fleet section).
TEST_WORKERS ?= 2

test: testbed lint ## testbed + lint + unit, integration and e2e tests (what CI runs)
	rc=0; \
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not serial" tests/unit tests/integration tests/e2e $(PYTEST_ARGS) || rc=$$?; \
	$(BIN)/pytest -m serial tests/unit tests/integration tests/e2e $(PYTEST_ARGS) || { s=$$?; [[ $$s == 5 ]] || rc=$$s; }; \
	exit $$rc

build: venv ## build the collection tarball into dist/
	mkdir -p dist
	$(BIN)/ansible-galaxy collection build --force --output-path dist .

demo: testbed collection ## release demo v1, then v2 with canary steps, on this machine (inventories/local)
	bash examples/app/demo.sh up

demo-down: ## remove the demo's projects, networks and ledger (keeps its database volume)
	bash examples/app/demo.sh down

bench: testbed collection ## run the benchmarks (record results in docs/BENCHMARKS.md)
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b; done

clean: ## remove build outputs (not the testbed)
	rm -rf build dist tests/output .pytest_cache
