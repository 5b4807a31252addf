# synscale — the verbs. `make demo` and `make test` are the two set-up commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SERVICES := prompter generator scorer trainer analyzer
EDITABLES := -e shared $(foreach s,$(SERVICES),-e services/$(s))
PYTEST_ARGS ?=

install: system-deps

system-deps:
	bash deploy/local/system_deps.sh

.PHONY: system-deps install demo demo-full test test-unit infra-up infra-down proto proto-check lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: constraints.txt requirements-dev.txt shared/pyproject.toml $(foreach s,$(SERVICES),services/$(s)/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt $(EDITABLES) -r requirements-dev.txt
	touch $@

demo: install
	$(BIN)/synscale demo

demo-full: install
	$(BIN)/synscale demo --full

# Starts real Kafka and MinIO, runs the whole suite, stops them (also on failure).
test: install
	$(BIN)/python -m synscale.testing.with_infra -- $(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: install
	$(BIN)/python -m pytest -m "not infra and not kube" $(PYTEST_ARGS)

infra-up: install
	$(BIN)/python deploy/local/launcher.py up

infra-down:
	$(BIN)/python deploy/local/launcher.py down

proto: install
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=shared/src --pyi_out=shared/src \
	  --grpc_python_out=shared/src protos/synscale/v1/*.proto

# ruff + mypy, and the import contracts of pyproject.toml (services independent; the
# domain core imports no service and no torch; docs/architecture.md).
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy shared/src services/*/src
	$(BIN)/lint-imports

bench: install
	$(BIN)/python -m synscale.testing.with_infra -- bash -c 'for b in bench/*.py; do $(BIN)/python $$b; done'

clean:
	rm -rf .infra .pytest_cache .mypy_cache .ruff_cache
