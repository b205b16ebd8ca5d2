# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo stress test lint types unit simulate bench clean venv compiled test-compiled browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[node,dev,bench,ray,custody]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/clearhouse demo --out out/demo --force

# The stress lab's default scenario: Monte Carlo paths through the engine, an HTML report.
stress: $(STAMP)
	$(BIN)/clearhouse stress jumps --out out/stress

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks hatch_build.py
	$(BIN)/ruff format --check src tests benchmarks hatch_build.py
	$(BIN)/lint-imports

types: $(STAMP)
	$(BIN)/mypy src

# The tests that only compute run on every core (a file's tests on one worker, so that its
# module fixtures are built once); then those marked serial (tests/conftest.py: real nodes,
# wall-clock waits, their own processes) run alone, as timing needs.
unit: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile -m "not serial" --durations=10
	$(BIN)/python -m pytest -q -m serial --durations=10

simulate: $(STAMP)
	$(BIN)/clearhouse simulate --seeds 200

test: lint types unit simulate

# Debian's headless Chromium and its driver, for the browser tests (the dashboard, the stress
# report; skipped without them). Best effort: a machine without apt, or not root, goes on.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then \
		echo "browser: $$(/usr/bin/chromium --version 2>/dev/null)"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver >/dev/null) \
		|| echo "browser: apt-get could not install chromium; the browser tests will be skipped"; \
	else \
		echo "browser: no apt-get as root here; the browser tests will be skipped"; \
	fi

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# Opt-in: the same package with clearhouse.core compiled by mypyc (hatch_build.py), installed
# in its own venv; it needs a C compiler and Python's headers. Nothing above uses it.
COMPILED_VENV := .venv-compiled
COMPILED_BIN := $(COMPILED_VENV)/bin
COMPILED_STAMP := $(COMPILED_VENV)/.installed
CORE_SOURCES := $(shell find src/clearhouse/core -name '*.py')

$(COMPILED_STAMP): pyproject.toml hatch_build.py $(CORE_SOURCES)
	$(PYTHON) -m venv $(COMPILED_VENV)
	$(COMPILED_BIN)/python -m pip install --quiet --upgrade pip
	HATCH_BUILD_HOOK_ENABLE_CUSTOM=true $(COMPILED_BIN)/python -m pip install --quiet '.[node,dev,bench]'
	$(COMPILED_BIN)/python -c "import clearhouse.core.engine.machine as m; \
	assert not m.__file__.endswith('.py'), m.__file__; print('compiled:', m.__file__)"
	touch $(COMPILED_STAMP)

compiled: $(COMPILED_STAMP)

test-compiled: $(COMPILED_STAMP)
	$(COMPILED_BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(COMPILED_VENV) out .mypy_cache .ruff_cache .pytest_cache
