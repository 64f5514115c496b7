# Factory Twin developer entry points. `make help` lists them; CI (.ci/run) reuses them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

# native/ holds the C Avro encoder (twin._avroenc) that the editable install compiles in place: a
# changed source re-runs the install, which rebuilds it (~2 s; no cache needed).
$(STAMP): pyproject.toml constraints.txt $(wildcard native/*.c)
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## Create .venv and install everything (pinned by constraints.txt)

# The WebXR client (xr_gateway/web): npm + Vite. `npm ci` reuses ~/.npm (the npm cache), so a repeat
# run downloads nothing; the build re-runs only when a source changed.
WEB := xr_gateway/web
WEB_SRC := $(shell find $(WEB)/src $(WEB)/public -type f 2>/dev/null) $(wildcard $(WEB)/index.html $(WEB)/vite.config.*)
$(WEB)/node_modules/.package-lock.json: $(WEB)/package.json $(WEB)/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm not found; install Node.js 20+"; exit 1; }
	cd $(WEB) && npm ci --prefer-offline --no-audit --no-fund --loglevel=error
$(WEB)/dist/index.html: $(WEB)/node_modules/.package-lock.json $(WEB_SRC)
	cd $(WEB) && npm run --silent build
web: $(WEB)/dist/index.html ## Build the WebXR client (npm + Vite) that the gateway serves at /

# Browser tests drive Debian's Chromium with Playwright (never a downloaded browser build).
CHROMIUM ?= /usr/bin/chromium
browser: ## Install Debian's chromium for the browser tests (if missing; needs root or sudo)
	@test -x $(CHROMIUM) || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian's chromium for the browser tests"; \
	  $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null \
	  || { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; }

test: setup web browser ## Run all tests; starts the local servers it needs (and stops the ones it started)
	cd $(WEB) && npm test --silent
	$(BIN)/pytest $(PYTEST_ARGS)

unit: setup ## Run the unit tests only (no servers)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

# The compiled encoder's guards (native/avroenc.c), built into build/native/, never over the in-place
# twin/_avroenc*.so everything else uses: the codec tests against an -fsanitize=address,undefined
# build (the interpreter preloads the ASan runtime; PYTHONMALLOC=malloc routes CPython's small
# allocations through it too; leak detection is off as CPython itself never frees everything;
# --capture=sys keeps a sanitizer report on the terminal), and a build per Python version.
NATIVE_BUILD := build/native
CODEC_TESTS := tests/unit/twin/test_codec_native.py tests/unit/twin/test_codec_native_memory.py tests/unit/twin/test_codec_logical.py
NATIVE_PYTHONS ?= 3.11 3.12 3.13

asan: setup ## The codec tests against an ASan+UBSan build of the encoder
	$(BIN)/python native/buildext.py --out $(NATIVE_BUILD)/asan --sanitize --werror
	libasan=$$($(BIN)/python native/buildext.py --print-libasan) || exit 1; \
	LD_PRELOAD=$$libasan ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 PYTHONMALLOC=malloc \
	  $(BIN)/python -m pytest -p native.pytest_native --native-build $(NATIVE_BUILD)/asan --native-sanitized \
	  --capture=sys -p no:cacheprovider -m "not slow" $(CODEC_TESTS) $(PYTEST_ARGS)

native-matrix: ## Build the encoder with Python 3.11, 3.12, 3.13 (-Werror); check each build against fastavro
	native/matrix.sh $(NATIVE_PYTHONS)

lint: setup ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: setup ## Format and auto-fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: setup web ## Bring up the local stack and run the demo
	$(BIN)/twin demo

down: setup ## Stop the local servers
	$(BIN)/twin infra down

lock: setup ## Re-pin constraints.txt from the current .venv
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

.PHONY: help setup web browser test unit asan native-matrix lint fmt demo down lock
