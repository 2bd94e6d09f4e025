# Every target installs what it needs into .venv from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export MLFLOW_PORT ?= 5000
export LOANRISK_PORT ?= 8000

.PHONY: install run test lint format train serve clean bench-serve bench-scale chaos

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## Train the default model if the registry has no champion, then run the MLflow UI and the service.
run: install
	$(BIN)/loanrisk db upgrade
	$(BIN)/loanrisk up

## The whole suite, slow and end-to-end tests included.
test: install
	$(BIN)/python -m pytest

## Availability attacks (frozen and stopped PostgreSQL, clients hanging up) with their figures;
## a private PostgreSQL cluster of their own (PostgreSQL 15 binaries). `make test` runs them too.
chaos: install
	$(BIN)/python -m pytest -m chaos -s tests/chaos

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

train: install
	$(BIN)/loanrisk train

serve: install
	$(BIN)/loanrisk serve

clean:
	rm -rf mlflow.db mlartifacts mlruns .pytest_cache .ruff_cache

## Serving benchmark: this service vs `mlflow models serve` vs a no-op FastAPI ceiling (wrk if installed).
bench-serve: install
	$(BIN)/python -m bench.serve

## Scale benchmark: synth, file scoring (with and without reason codes) beside Keras predict and
## Spark, training s/epoch/1M rows beside Keras defaults and MLPClassifier, training peak memory.
## Sizes: make bench-scale SCALE_ARGS="--rows 1000000 --big-rows 10000000 --epoch-rows 200000"
SCALE_ARGS ?=
bench-scale: install
	$(BIN)/python -m bench.scale $(SCALE_ARGS)
