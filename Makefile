# streamcache: every target uses the project-local virtualenv (.venv).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint unit functional bench replay clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -n 2 tests

unit: install
	$(PY) -m pytest tests/unit

functional: install
	$(PY) -m pytest tests/functional

bench: install
	$(PY) -m bench

replay: install
	@test -n "$(EVENT)" || { echo "usage: make replay EVENT=events/<file>.json" >&2; exit 2; }
	$(PY) -m streamcache replay "$(EVENT)"

clean:
	rm -rf $(VENV) dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
