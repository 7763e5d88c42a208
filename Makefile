# The two set-up commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench mutate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/eventstore --db demo.db demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

# Mutation testing of the audit-critical modules ([tool.mutmut] in pyproject.toml, docs/testing.md).
# Results stay in mutants/ (`$(BIN)/mutmut results`, `$(BIN)/mutmut show NAME`).
mutate: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test,bench,mutate]'
	$(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut results --all true > mutants/results.txt || true
	$(BIN)/python -m tests.mutation_report mutants/results.txt

bench: $(VENV)/.installed
	$(BIN)/eventstore bench

clean:
	rm -rf $(VENV) mutants demo.db demo.db-wal demo.db-shm .pytest_cache .hypothesis
