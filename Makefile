# streamcache: every target uses the project-local virtualenv (.venv).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: install test lint unit functional bench bench-quick demo replay consume soak mutants package deploy clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint $(CHECKOV_STAMP)
	CHECKOV_BIN=$(CHECKOV_VENV)/bin/checkov $(PY) -m pytest -n 2 tests

unit: install
	$(PY) -m pytest tests/unit

functional: install
	$(PY) -m pytest tests/functional

bench: install
	$(PY) -m bench

bench-quick: install
	$(PY) -m bench --quick

demo: install
	$(PY) -m streamcache demo

consume: install
	$(PY) -m streamcache consume $(ARGS)

soak: install
	$(PY) -m pytest tests/consistency --soak-seconds=$(or $(SECONDS),300) -p no:xdist

# One-line mutants on a scratch copy, the smallest test set each (minutes; not part of make test).
mutants: install
	$(PY) scripts/mutants.py $(NAMES)

package: install
	bash infra/package.sh

deploy: install
	@test -n "$(STACK)" -a -n "$(BUCKET)" || { echo "usage: make deploy STACK=<name> BUCKET=<s3 bucket>" >&2; exit 2; }
	bash infra/deploy.sh "$(STACK)" "$(BUCKET)" $(PARAMS)

replay: install
	@test -n "$(EVENT)" || { echo "usage: make replay EVENT=events/<file>.json" >&2; exit 2; }
	$(PY) -m streamcache replay "$(EVENT)"

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
