# Two commands: `make lab` (set up, open the quickstart) and `make test` (set up, run every test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
# llama-cpp-python compiles from source. This asks for a portable AVX2 build: -march=native
# also turns on llama.cpp's AMX path on recent Xeons, which crashes (SIGSEGV) in VMs that do not
# grant AMX. Set CMAKE_ARGS yourself for CUDA (-DGGML_CUDA=on) or Metal builds.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON

# The browser tests drive Debian's chromium (installed once, never a downloaded browser).
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# The editable install builds the JupyterLab extension: rebuild when its sources change.
LABEXTENSION := labextension/package.json labextension/yarn.lock $(shell find labextension/src labextension/style -type f)

.PHONY: setup lab test test-fast lint docs bench clean chatterbox-env

$(STAMP): pyproject.toml constraints.txt $(LABEXTENSION)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/pip install -c constraints.txt -e '.[dev]'
	touch $@

setup: $(STAMP)

# Chatterbox pins an old torch and needs torchaudio: it lives in its own venv (~7 GB, minutes).
# The tests start a kernel with this interpreter; the stamp makes warm runs skip the install.
CBX := .venv-chatterbox
$(CBX)/.installed: requirements-chatterbox.txt pyproject.toml
	test -x $(CBX)/bin/python || $(PYTHON) -m venv $(CBX)
	$(CBX)/bin/python -m pip install --upgrade pip
	$(CBX)/bin/pip install -r requirements-chatterbox.txt -e '.[test]'
	$(CBX)/bin/pip install --no-deps chatterbox-tts==0.1.7
	touch $@

chatterbox-env: $(CBX)/.installed

lab: setup
	MALLOC_ARENA_MAX=2 $(BIN)/jupyter lab $(ROOT_FLAG) notebooks/01-quickstart.ipynb

$(CHROMIUM):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

test: setup chatterbox-env $(CHROMIUM)
	$(BIN)/ruff check .
	LLMUX_CHATTERBOX_PYTHON=$(CBX)/bin/python $(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m unit -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The documentation site, warnings as errors; open docs/_build/html/index.html.
docs: setup
	$(BIN)/sphinx-build -E -W --keep-going -b html docs docs/_build/html

bench: setup
	$(BIN)/python bench/bench_llamacpp_chat.py
	$(BIN)/python bench/bench_llm_bench.py
	$(BIN)/python bench/bench_constrained.py
	$(BIN)/python bench/bench_remote_chat.py
	$(BIN)/python bench/bench_llamacpp_draft.py
	$(BIN)/python bench/bench_speech.py
	$(BIN)/python bench/bench_transformers_chat.py
	$(BIN)/python bench/bench_context.py
	$(BIN)/python bench/bench_map.py
	$(BIN)/python bench/bench_completion.py
	$(BIN)/python bench/bench_describe.py
	$(BIN)/python bench/bench_history.py
	$(BIN)/python bench/bench_operators.py
	$(BIN)/python bench/bench_own_models.py

clean:
	rm -rf $(VENV) $(CBX) build dist docs/_build .pytest_cache test-artifacts llmux_jupyter/labextension labextension/lib
