# The two commands a new user needs:  `make demo`  and  `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint typecheck unit screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

## test: set up .venv, then lint (ruff), type-check (mypy), import layering, and the whole pytest suite
test: $(STAMP)
	$(BIN)/ruff check director_tui tests bench
	$(BIN)/ruff format --check director_tui tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

## demo: set up .venv, then walk the whole flow on a sample repo with scripted agents (no keys)
demo: $(STAMP)
	$(BIN)/director demo --dir "$$(mktemp -d)/director-demo"

lint: $(STAMP)
	$(BIN)/ruff check director_tui tests bench
	$(BIN)/ruff format --check director_tui tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

screenshots: $(STAMP)
	$(BIN)/python scripts/make_screenshots.py

clean:
	rm -rf $(VENV) build dist *.egg-info
