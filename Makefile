# Two commands do everything on a fresh machine:
#   make demo   create .venv, install autometa, tune a real credit-scoring table for 60 s
#   make test   create .venv if needed, run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_CSV := autometa-out/credit_data.csv
BUDGET ?= 60

.PHONY: demo test test-fast lint clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch pinned first: an unpinned torch pulls a multi-GB CUDA build (the nas extra pins it too)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev,nas]"
	touch $@

$(DEMO_CSV): $(VENV)/.installed
	$(PY) experiments/datasets.py modeldata credit_data $(DEMO_CSV)

demo: $(VENV)/.installed $(DEMO_CSV)
	$(VENV)/bin/autometa tune $(DEMO_CSV) --label Status --time-budget $(BUDGET) --out autometa-out/demo

# pytest exits 5 when it collects no tests: that is not a failure of the suite.
test: $(VENV)/.installed
	$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not slow"; rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check autometa tests experiments
	$(VENV)/bin/mypy autometa

clean:
	rm -rf $(VENV) autometa-out .pytest_cache
