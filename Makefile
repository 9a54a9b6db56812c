# The two commands of the README:
#   make run   - create .venv, install, start Skyline on embedded defaults
#   make test  - install the test tools and run the test suite
# and make stop, make lint (ruff), make typecheck (mypy).
# Installs resolve the package's own dependencies (pyproject.toml) under the pins of
# requirements*.txt used as constraints: a package the code imports but pyproject.toml
# does not declare is missing from .venv, as it would be after `pip install skyline`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export OPENBLAS_NUM_THREADS := 1

.PHONY: install install-test run stop status test lint typecheck format

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt $(VENV)-mlflow/.installed
	$(BIN)/python -m pip install -q -c requirements-test.txt -e ".[test]"
	touch $@

# vista's MLflow tests run `mlflow server` and MLflow's client from a venv of their own:
# mlflow's pins conflict with requirements.txt (tests/integration/mlflow_server.py).
$(VENV)-mlflow/.installed: requirements-mlflow.txt
	test -x $(VENV)-mlflow/bin/python || $(PYTHON) -m venv $(VENV)-mlflow
	$(VENV)-mlflow/bin/python -m pip install -q -r requirements-mlflow.txt
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/skyline config check
	$(BIN)/skyline db upgrade
	$(BIN)/skyline start all --pick-free-ports
	$(BIN)/skyline status
	$(BIN)/skyline demo --background

stop:
	@if [ -x $(BIN)/skyline ]; then $(BIN)/skyline demo --stop; $(BIN)/skyline stop all; else echo "nothing installed"; fi

status: install
	$(BIN)/skyline status

# Two pytest-xdist workers by default: most of the suite's time is spent waiting on the
# processes and servers it starts, so two run in about half the time on a 2-core machine
# (one process: 19-20 min; two: 9.5-10 min).  Made the default after two parallel
# `.ci/run`s in a row passed (2026-12-07: 9.9 and 9.7 min; the failures seen before were
# test races, fixed).  Every test starts its servers on free ports and its SQL databases
# under random names, and each worker has its own session Redis and Redis Cluster.  The
# tests that run a whole Skyline, and those that use the MariaDB server, share one
# xdist_group ("full_stack"), so they run one at a time on one worker (pytest < 9.2:
# pytest-xdist 3.8's groups do not work on 9.2).  PYTEST_WORKERS=0 runs one process.
PYTEST_WORKERS ?= 2

test: install-test
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check skyline tests utils
	$(BIN)/ruff format --check skyline tests utils

typecheck: install-test
	$(BIN)/mypy

format: install-test
	$(BIN)/ruff format skyline tests utils
	$(BIN)/ruff check --fix skyline tests utils
