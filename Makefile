# Set-up and the two entry points the README promises. Everything installs into .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The shared MovieLens copies sit beside the clone on the project's machines.
export KMREC_DATA_DIR ?= $(abspath ../shared/datasets)

.PHONY: setup run test bench clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU wheel first: an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/.installed

run: setup
	$(BIN)/kmrec run

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/bench_synthetic.py

clean:
	rm -rf $(VENV) .pytest_cache
