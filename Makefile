# The two set-up commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench mutate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e . --group test --group bench
	touch $@

demo: $(VENV)/.installed
	$(BIN)/eventstore --db demo.db demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

# Format, lint and type checks ([tool.ruff] and [tool.mypy] in pyproject.toml); CI runs it after the tests.
lint: $(VENV)/.installed
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

# Mutation testing of the audit-critical modules ([tool.mutmut] in pyproject.toml, docs/testing.md).
# Starts from a clean mutants/ (mutmut's cache keeps results across test changes); about 20 minutes
# on 2 cores. The report is mutants/report.md; each survivor's diff is in mutants/survivors.diff.
mutate: $(VENV)/.installed
	$(BIN)/pip install --quiet -e . --group test --group mutate
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 > /dev/null
	$(BIN)/mutmut results --all true > mutants/results.txt
	$(BIN)/python -m tests.mutation_report mutants/results.txt | tee mutants/report.md

# The SQLite log suite with backup, prune and archive beside a file copy, read-model rebuilds and live
# projection; then the ingest service against 16 direct processes (docs/performance.md).
bench: $(VENV)/.installed
	$(BIN)/python -m benchmarks --prune --projections
	$(BIN)/python -m benchmarks --service

clean:
	rm -rf $(VENV) mutants demo.db demo.db-wal demo.db-shm .pytest_cache .hypothesis
