# The two commands a new user needs:  `make demo`  and  `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test check static demo lint typecheck unit screenshots clean sandbox-tool

# Tests of the fast lane: no real agent CLI (marker e2e: OpenCode, Claude Code, Codex from
# npm), no real terminal (marker tmux) and no multi-node Ray cluster (marker cluster).
FAST_TESTS := -m "not e2e and not tmux and not cluster"

RUNTIME := $(VENV)/.runtime

# What the program needs to run (the demo): no test toolchain.
$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(BIN)/python -m pip install -q -e '.[test,ray]'
	touch $(STAMP)

## sandbox-tool: bubblewrap (the OS sandbox for agents), installed with apt when missing and
## we are root; otherwise a note (the sandbox tests then skip, or fail under CI=1)
sandbox-tool:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing bubblewrap (the agents' sandbox) with apt-get"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	  else \
	    echo "note: bwrap is not installed (apt install bubblewrap): the sandbox tests skip"; \
	  fi; }

## test: set up .venv, then lint (ruff), type-check (mypy), import layering, and the whole pytest suite
test: static sandbox-tool
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

## check: the fast lane while working — the same static checks, and every test that needs
## no real agent CLI and no tmux (`make test` stays the whole suite, the one CI runs)
check: static sandbox-tool
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile $(FAST_TESTS)

static: lint typecheck
	$(BIN)/lint-imports

## demo: set up .venv (the program only, not the test tools), then walk the whole flow on a
## sample repo with scripted agents (no keys)
demo: $(RUNTIME)
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
