# Pavilion DP Connector. Every target creates and uses .venv with pip, installed from the lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements/dev.lock
STAMP := $(VENV)/.installed
# pytest-xdist workers; every test gets its own database cloned from a migrated template.
TEST_WORKERS ?= 2
PIP_COMPILE_ARGS ?=

.PHONY: demo test test-unit lint lock bench bench-quick clean

# Exactly what CI tested: the lock's pins (nothing else left over), then the project itself.
# Re-runs whenever the lock or pyproject.toml changes.
$(STAMP): $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r $(LOCK)
	$(BIN)/pip-sync --quiet $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# Re-resolve the lock from pyproject.toml (pins kept where the bounds allow them);
# `make lock PIP_COMPILE_ARGS=--upgrade` moves every pin to the newest release in bounds.
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --extra dev --strip-extras --no-emit-index-url \
		--no-emit-find-links --no-emit-trusted-host --newline LF $(PIP_COMPILE_ARGS) \
		--output-file $(LOCK) pyproject.toml

demo: $(STAMP)
	$(BIN)/pavilion demo

# The few `serial` tests alone, then everything else on the xdist workers; coverage adds up.
test: $(STAMP)
	$(BIN)/pytest -m serial --durations=25 --cov=pavilion --cov-report=
	$(BIN)/pytest -n $(TEST_WORKERS) -m "not serial" --durations=25 \
		--cov=pavilion --cov-append --cov-report=term-missing --cov-fail-under=95

test-unit: $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS) --durations=25 tests/unit

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy --strict src
	$(BIN)/lint-imports

bench: $(STAMP)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# verify_e2e.py also checks the connector's CPU per verification against bench/budget.json.
bench-quick: $(STAMP)
	@for script in bench/*.py; do \
		check=; [ "$$script" = bench/verify_e2e.py ] && check=--check; \
		echo "== $$script"; $(BIN)/python $$script --quick $$check || exit 1; done

clean:
	rm -rf $(VENV) .pavilion .pytest_cache .mypy_cache .ruff_cache .import_linter_cache \
		.coverage .coverage.*
