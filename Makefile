# Two commands: `make lab` (set up, open the quickstart) and `make test` (set up, run every test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: setup lab test test-fast lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/pip install -c constraints.txt -e '.[dev]'
	touch $@

setup: $(STAMP)

lab: setup
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/01-quickstart.ipynb

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m unit -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/python bench/bench_llamacpp_chat.py

clean:
	rm -rf $(VENV) build dist .pytest_cache
