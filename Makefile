# The two commands of the README are `make run` and `make test`; both install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test test-differential bench guest clean

# A fresh virtualenv with the package and its pinned dependencies.
$(BIN)/opml: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# anvil, forge, cast, solc-js and forge-std, pinned by package-lock.json.
node_modules/.bin/forge: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Debian's Fashion-MNIST (IDX files, the MNIST format) for the training tests.
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
$(FASHION_MNIST):
	apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist

install: $(BIN)/opml node_modules/.bin/forge $(FASHION_MNIST)

run: install
	$(BIN)/python -m opml.demo

test: install
	$(BIN)/python -m pytest -q

# The full Python-vs-Solidity differential: 100,000 random steps and 1,000 MLP steps.
test-differential: install
	OPML_FULL_DIFFERENTIAL=1 $(BIN)/python -m pytest -q tests/chain/test_mips_differential.py

bench: install
	$(BIN)/python bench/vm.py
	$(BIN)/python bench/step_gas.py
	$(BIN)/python bench/models.py
	$(BIN)/python bench/dispute_gas.py

guest: install
	$(BIN)/opml guest build

clean:
	rm -rf $(VENV) node_modules contracts/out contracts/cache .pytest_cache .hypothesis
