# Everything a developer or CI runs. `make test` and `make demo` work on a fresh clone:
# they create .venv from pyproject.toml first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := dependencies/requirements.txt
INSTALLED := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)
# What the local stack needs (the demo): the pinned runtime dependencies and the `local` extra.
LOCAL_STAMP := $(INSTALLED)-local
# Everything: the development tools on top (tests, linters).
STAMP := $(INSTALLED)-dev
# What the Lambda runtime already has: never pinned or packaged.
RUNTIME_PROVIDED := boto3 botocore s3transfer jmespath python-dateutil six urllib3

# checkov (the template's security scan) lives in its own venv, pinned: it pins an old boto3
# that must not meet ours, and a new release's new checks must not fail lint by surprise.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

# asl-validator (the state machines' definitions as AWS reads them: moto runs definitions
# AWS refuses) from npm (Node.js 18 or later), its whole tree pinned by its package-lock.json.
ASL_VALIDATOR_DIR := tools/asl-validator
ASL_VALIDATOR_STAMP := $(ASL_VALIDATOR_DIR)/node_modules/.installed-$(shell cat $(ASL_VALIDATOR_DIR)/package-lock.json | cksum | cut -d' ' -f1)

# The functions' runtime, Python 3.13 (`make build`; CI's second test run): the first that
# runs of python3.13 on PATH and pyenv's (whose shim fails when 3.13 is not selected).
RUNTIME_PYTHON ?= $(shell for p in python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null && { command -v "$$p"; break; }; done)
# What `make test` runs (all of tests/ by default); CI's Python 3.13 run passes less.
PYTEST_ARGS ?=

.PHONY: dev test test-runtime lint format demo local openapi docs-tables docs pr build deploy delete package lock clean

$(LOCAL_STAMP):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "backdrop needs Python >= 3.11 (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The functions' pinned dependencies first, exactly as the layer has them; then the rest.
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet -e '.[local]'
	rm -f $(VENV)/.installed-* && touch $(LOCAL_STAMP)

$(CHECKOV_STAMP):
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

$(ASL_VALIDATOR_STAMP):
	npm ci --prefix $(ASL_VALIDATOR_DIR) --no-audit --no-fund --loglevel=error
	touch $@

$(STAMP): $(LOCAL_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP)  ## set up the virtual environment (everything: the local stack, tests, linters)

test: $(STAMP) $(ASL_VALIDATOR_STAMP)  ## the whole suite: unit, integration (moto) and end to end (local stack)
	$(BIN)/pytest $(PYTEST_ARGS)

# The unit and integration tests again on the functions' runtime, in a venv of its own (the
# end-to-end tests, a local stack on loopback, run once, on PYTHON).
test-runtime:
	@test -n "$(RUNTIME_PYTHON)" || { echo "python3.13 not found: install it (pyenv install 3.13) or set RUNTIME_PYTHON"; exit 1; }
	$(MAKE) test PYTHON=$(RUNTIME_PYTHON) VENV=.venv-3.13 PYTEST_ARGS="tests/unit tests/integration"

lint: $(STAMP) $(CHECKOV_STAMP) $(ASL_VALIDATOR_STAMP)  ## ruff, mypy, the layers, cfn-lint, checkov, the ASL
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	# The layers: an import may only point down (pyproject.toml's [tool.importlinter]).
	$(BIN)/lint-imports --no-cache
	$(BIN)/cfn-lint template.yaml
	# Every skipped check carries its reason in the resource's Metadata (tests/unit/test_checkov_skips.py).
	$(CHECKOV) -f template.yaml --framework cloudformation --compact --quiet --skip-download
	$(BIN)/python -m backdrop_local.asl_lint

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: $(LOCAL_STAMP)  ## run the local stack, generate backgrounds for the sample images
	$(BIN)/backdrop demo

local: $(LOCAL_STAMP)  ## run the local stack until Ctrl-C
	$(BIN)/backdrop local

openapi: $(LOCAL_STAMP)  ## rewrite openapi.json from the code, and the API reference from it (a test fails when they differ)
	$(BIN)/backdrop openapi > openapi.json
	$(BIN)/python -m backdrop_local.docs_tables

docs-tables: $(LOCAL_STAMP)  ## rewrite docs/reference/ (errors, configuration, API) from error_codes.py, template.yaml, openapi.json (a test fails when they differ)
	$(BIN)/python -m backdrop_local.docs_tables

# NO_MKDOCS_2_WARNING: Material's notice about its successor, printed on every build.
docs: $(STAMP)  ## build the documentation site into .site/ (mkdocs --strict: a broken link or anchor fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir .site

pr: lint test

lock: $(STAMP)  ## re-pin the functions' dependencies (after changing pyproject.toml's)
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
		--no-annotate --custom-compile-command 'make lock' \
		$(RUNTIME_PROVIDED:%=--no-emit-package %) -o $(LOCK)

# `sam build` needs the runtime's Python (3.13) on PATH; SAM CLI lives in its own venv so
# its pins never meet ours.
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
# samconfig.toml's environment: default (stack backdrop) or dev (stack backdrop-dev).
ENV ?= default
# `make package BUCKET=my-artifacts`: that bucket; without it, SAM's managed bucket.
BUCKET ?=
# The AWS region; empty: your AWS configuration's (AWS_DEFAULT_REGION, the profile's).
REGION ?=
SAM_REGION := $(if $(REGION),--region $(REGION))

$(SAM):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli

build: $(SAM)  ## sam build: the functions and their dependencies layer into .aws-sam/
	PATH="$(dir $(RUNTIME_PYTHON)):$$PATH" $(SAM) build

# The preflight checks, read-only, what would otherwise fail the deploy half-way (and roll
# the stack back): the account's quotas and settings, the parameter values, the build.
deploy: build $(LOCAL_STAMP)  ## build, check (backdrop preflight), then deploy samconfig.toml's ENV (default: stack backdrop; ENV=dev: backdrop-dev)
	$(BIN)/backdrop preflight --config-env $(ENV) $(SAM_REGION)
	$(SAM) deploy --config-env $(ENV) $(SAM_REGION)

delete: $(SAM)  ## delete ENV's stack (asks first; the buckets must be empty)
	$(SAM) delete --config-env $(ENV) $(SAM_REGION)

package: build  ## packaged.yaml: the built template with code in S3, deployable without building
	$(SAM) package --config-env $(ENV) $(SAM_REGION) --output-template-file packaged.yaml \
		$(if $(BUCKET),--s3-bucket $(BUCKET),--resolve-s3)

clean:
	rm -rf $(VENV) .venv-3.13 $(SAM_VENV) $(CHECKOV_VENV) $(ASL_VALIDATOR_DIR)/node_modules .aws-sam .pytest_cache .mypy_cache .ruff_cache demo-output \
		backdrop-results packaged.yaml .site
