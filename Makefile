# The two commands of the README are `make run` and `make test`; both install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test bench guest clean

# A fresh virtualenv with the package and its pinned dependencies.
$(BIN)/opml: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/opml

run: install
	$(BIN)/python -m opml.demo

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/vm.py

guest: install
	$(BIN)/opml guest build

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
