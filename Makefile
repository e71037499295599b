# astrot2: two commands do all the set-up on a fresh machine.
#   make demo   create .venv if missing, install astrot2 alone (+ matplotlib for the
#               figure), run the main job on bundled real alerts
#   make test   create .venv if missing, install the CPU build of PyTorch and the train,
#               spark and dev extras, run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BASE   := $(VENV)/.base
STAMP  := $(VENV)/.installed
# PyTorch for training and the tests: the CPU build, from PyTorch's own index (PyPI's
# torch for Linux is a multi-GB CUDA build).  Where that index cannot be reached, pip
# goes on with its configured indexes / wheel folders (a mirror that holds the CPU
# build); `make test TORCH_INDEX=` uses pip's configuration alone.
TORCH       ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: demo test lint bench clean

# What the demo needs: astrot2 and its core dependencies (no torch, no pyspark).
$(BASE): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[plot]"
	touch $(BASE)

$(STAMP): $(BASE)
	$(PY) -m pip install -q $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e ".[dev,train,spark]"
	touch $(STAMP)

demo: $(BASE)
	$(PY) -m astrot2.demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
