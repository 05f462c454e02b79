# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA_DIR ?= ../shared/data  # MNIST in torchvision's layout, for the tests

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[jax,examples,test]"
	touch $@

.PHONY: install demo test lint
install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) examples/energy_fitting.py --targets U3 --steps 3000 --out outputs/energy_fitting_U3.png

test: $(VENV)/.installed
	$(PY) -m ruff check .
	ARDAE_DATA_DIR=$(abspath $(DATA_DIR)) $(PY) -m pytest -q --doctest-modules pyro_ardae numpyro_ardae tests

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
