# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA_DIR ?= ../shared/data  # MNIST in torchvision's layout, for the tests

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[pyro,numpyro,examples,docs,test]"
	touch $@

# NumPyro's extra alone (no torch, no Pyro), for `make test-numpyro`.
NUMPYRO_VENV := .venv-numpyro
NUMPYRO_PY := $(NUMPYRO_VENV)/bin/python
$(NUMPYRO_VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(NUMPYRO_VENV)
	$(NUMPYRO_PY) -m pip install -q --upgrade pip
	$(NUMPYRO_PY) -m pip install -q -c constraints.txt -e ".[numpyro,test]"
	touch $@

.PHONY: install demo test test-numpyro docs lint
install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m examples.banana --out outputs/banana.png

test: $(VENV)/.installed
	$(PY) -m ruff check .
	ARDAE_DATA_DIR=$(abspath $(DATA_DIR)) $(PY) -m pytest -q --doctest-modules pyro_ardae numpyro_ardae examples/common.py tests

test-numpyro: $(NUMPYRO_VENV)/.installed
	$(NUMPYRO_PY) -c "import numpyro_ardae, sys; assert 'torch' not in sys.modules and 'pyro' not in sys.modules"
	$(NUMPYRO_PY) -m pytest -q --doctest-modules numpyro_ardae tests/test_numpyro.py tests/test_numpyro_conventions.py

# The site, its API reference and its tutorials, which run as it builds.
docs: $(VENV)/.installed
	$(PY) -m mkdocs build --strict --site-dir site

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
