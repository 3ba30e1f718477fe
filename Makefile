# Every target builds .venv/ first when it is missing or older than pyproject.toml, so each one
# works as the first command on a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ploutos-installed

export PLOUTOS_DATA ?= $(CURDIR)/data/sample_ohlcv.csv
export PLOUTOS_STORAGE ?= $(CURDIR)/storage
export DAGSTER_HOME ?= $(CURDIR)/storage/dagster_home
export NUMBA_CACHE_DIR ?= $(CURDIR)/storage/numba_cache
export MPLBACKEND ?= Agg

# The first interpreter >= 3.12 among: $(PYTHON), python3.12, python3.13, python3, then pyenv's (3.12 is the version tested).
FIND_PYTHON := for c in $(PYTHON) python3.12 python3.13 python3 \
	$$(ls -d $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -V); do \
	  p=$$(command -v $$c 2>/dev/null) || continue; \
	  PYENV_VERSION= $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; break; }; \
	done

.PHONY: help venv demo test test-cluster debian-packages ui lint features-doc sample-data bench cluster cluster-down

# The cluster's packages; deploy/Dockerfile runs the same command (tests/pipeline/test_cluster.py).
CLUSTER_STAMP := $(VENV)/.ploutos-cluster-installed
CLUSTER_INSTALL := python -m pip install -e ".[cluster]"

help:
	@echo "make demo   materialize the whole pipeline on the bundled sample data"
	@echo "make test   run the test suite"
	@echo "make ui     start the Dagster web UI on http://127.0.0.1:3000"
	@echo "make cluster       start PostgreSQL, Redis, S3 (moto), Celery workers and Dagster on 127.0.0.1"
	@echo "make cluster-down  stop what make cluster started (the data stays in storage/cluster/)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@py=$$($(FIND_PYTHON)); \
	if [ -z "$$py" ]; then echo "error: Ploutos needs Python >= 3.12; install one (e.g. 'pyenv install 3.12') or pass PYTHON=/path/to/python3.12" >&2; exit 1; fi; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
	  echo "creating $(VENV) with $$py"; rm -rf $(VENV); $$py -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: storage/dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp storage/dagster.yaml $@

demo: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m ploutos_pipeline.demo

# Two workers: the slow tests spend much of their time waiting on Dagster's processes and
# daemons. A module's tests stay on one worker (its fixtures, e.g. live servers, start once), and
# modules start in conftest's order, slow ones first (xdist's own order, by test count, would start
# the one-test browser module last).
TEST_WORKERS ?= 2

# The suite includes the cluster tests: it installs the cluster extra, and the tests start
# PostgreSQL, Redis, moto and Celery workers themselves (the cluster module starts first).
test: $(CLUSTER_STAMP) debian-packages
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

# The browser test drives Debian's Chromium (Playwright's own browser download does not work
# offline), the cluster tests Debian's redis-server; a test whose program cannot be installed is
# skipped, saying so.
DEBIAN_PACKAGES := chromium redis-server

debian-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do command -v $$p >/dev/null 2>&1 || echo $$p; done); \
	[ -z "$$missing" ] || { \
	  echo "installing Debian's $$missing for the browser and cluster tests"; \
	  (apt-get update -qq && apt-get install -y -qq $$missing >/dev/null) || \
	  echo "warning: could not install $$missing; the tests that need it will be skipped"; }

ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

lint: $(STAMP)
	$(VENV)/bin/ruff check ploutos_core ploutos_pipeline tests benchmarks

features-doc: $(STAMP)
	$(PY) -m ploutos_core.features.docs --write docs/FEATURES.md

sample-data: $(STAMP)
	$(PY) -m ploutos_core.data.sample --output data/sample_ohlcv.csv

bench: $(STAMP)
	$(PY) benchmarks/bench_features.py
	$(PY) benchmarks/bench_env.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_backtest.py

# A one-machine cluster (deploy/cluster.sh): PostgreSQL storage, Celery workers on the gpu and cpu
# queues, a moto S3 server; the UI on http://127.0.0.1:$${PLOUTOS_WEB_PORT:-3000}.
$(CLUSTER_STAMP): $(STAMP)
	$(VENV)/bin/$(CLUSTER_INSTALL) --quiet
	@touch $@

cluster: $(CLUSTER_STAMP)
	PYTHON=$(abspath $(PY)) deploy/cluster.sh up

cluster-down:
	PYTHON=$(abspath $(PY)) deploy/cluster.sh down

# Only the cluster and object-store tests (part of `make test` too).
test-cluster: $(CLUSTER_STAMP) debian-packages
	$(PY) -m pytest tests/pipeline/test_cluster.py tests/pipeline/test_object_storage.py tests/core/test_object_store.py
