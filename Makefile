# Edit models.yaml, then `make repo` and `make serve`. `make help` lists targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# `make help` lists every `?=` variable below with its value and the `#:` line above it.
#: the Python that creates the venv
PYTHON_BOOT ?= python3
#: the manifest
MANIFEST ?= models.yaml
#: the model repository it builds
REPO ?= Triton/models
#: serve's ports
HTTP_PORT ?= 8000
#: serve's ports
GRPC_PORT ?= 8001
#: serve's ports
METRICS_PORT ?= 8002
#: serve's engine: auto, embedded or docker
ENGINE ?= auto
#: serve and verify a variant (configs/<VARIANT>.pbtxt)
VARIANT ?=
#: the model `make profile` sweeps
MODEL ?=
#: more pytest arguments for `make test` and `make test-fast`
PYTEST_ARGS ?=
# Test modules run on parallel workers (pytest-xdist): about 11.5 min here on 4, against 34 one after another, which
# keeps two cores only half busy (docs/architecture.md). TEST_WORKERS=0 runs them one after another.
#: parallel test workers (0: one after another)
TEST_WORKERS ?= 4
#: the model and request count `make soak` sends
SOAK_MODEL ?= bert
#: the model and request count `make soak` sends
SOAK_REQUESTS ?= 20000

# Third-party packages live in a venv cached outside the clone, keyed on the
# requirements files; .venv links to it, and this clone is installed editable.
#: where the cached venvs, schemas and backend builds live
VENV_CACHE ?= $(HOME)/.cache/triton-repo-compiler
PY_TAG := $(shell $(PYTHON_BOOT) -c "import sys; print(f\"py{sys.version_info[0]}{sys.version_info[1]}\")")
REQ_HASH := $(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
VENV_DIR := $(VENV_CACHE)/venv-$(PY_TAG)-$(REQ_HASH)
RELEASES_HASH := $(shell cat compiler/releases.py | sha256sum | cut -c1-16)
# NVIDIA's PyTorch backend is built from pinned source archives: from this folder where it exists (CI and this
# machine reach no GitHub), else from GitHub at the same commits (compiler/backend/nvidia/sources.py).
#: the pinned pytorch_backend source archives (else fetched from GitHub)
TRITON_BACKEND_SOURCES ?= $(wildcard $(abspath $(CURDIR)/../shared/vendor/triton-backend-sources))
export TRITON_BACKEND_SOURCES
PY := .venv/bin/python
COMPILER := $(PY) -m compiler
# whole modules per worker (their module fixtures are made once), in the order tests/conftest.py gives them
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder)

HELP_VARIABLES := $(shell awk '/^[A-Z_]+ \?=/ {print $$1}' $(firstword $(MAKEFILE_LIST)))

.PHONY: help setup repo build serve verify check soak bench profile test test-fast lint schema container-files clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  variables (make VAR=value):"
	@$(foreach v,$(HELP_VARIABLES),printf '    %-24s %s\n' '$(v)=$(strip $($(v)))' \
		"$$(awk '/^#: /{said=substr($$0,4); next} /^$(v) \?=/{print said; exit} {said=""}' $(firstword $(MAKEFILE_LIST)))";)

setup: ## Create .venv with everything (idempotent; quick when nothing changed)
	@if [ ! -f "$(VENV_DIR)/.complete" ]; then \
		echo "creating $(VENV_DIR) (a few minutes, once per requirements change)"; \
		rm -rf "$(VENV_DIR)" && mkdir -p "$(VENV_CACHE)" && \
		$(PYTHON_BOOT) -m venv "$(VENV_DIR)" && \
		"$(VENV_DIR)/bin/pip" install -q --upgrade pip && \
		"$(VENV_DIR)/bin/pip" install -q -r requirements.txt -r requirements-dev.txt && \
		mkdir -p "$(VENV_CACHE)/schemas" && \
		"$(VENV_DIR)/bin/pip" download -q --no-deps --only-binary=:all: --platform manylinux1_x86_64 \
			--platform manylinux2014_x86_64 -d "$(VENV_CACHE)/schemas" tritonclient==2.51.0 && \
		touch "$(VENV_DIR)/.complete"; \
	fi
	@# Every release's ModelConfig schema (check never downloads: the pre-commit hook runs offline); again when
	@# the release table changes.
	@if [ ! -f "$(VENV_CACHE)/schemas/.fetched-$(RELEASES_HASH)" ]; then \
		TRITON_COMPILER_CACHE="$(VENV_CACHE)" "$(VENV_DIR)/bin/python" -m compiler.triton_config.release_schema && \
		touch "$(VENV_CACHE)/schemas/.fetched-$(RELEASES_HASH)"; \
	fi
	@if [ "$$(readlink .venv 2>/dev/null)" != "$(VENV_DIR)" ]; then rm -rf .venv && ln -s "$(VENV_DIR)" .venv; fi
	@# pip runs as the cached venv's own python, so the triton-compiler script's #! outlives this clone's .venv link
	@if [ "$$(cd / && $(CURDIR)/$(PY) -c 'import compiler, os; print(os.path.dirname(os.path.dirname(compiler.__file__)))' 2>/dev/null)" != "$(CURDIR)" ]; then \
		"$(VENV_DIR)/bin/python" -m pip install -q --no-deps --no-build-isolation -e . ; \
	fi
	@# NVIDIA's PyTorch backend for this venv's torch (about 1.5 min once; cached beside the venv, keyed on torch,
	@# the source commits and the server library): the server runs every PyTorch model on it
	@TRITON_COMPILER_CACHE="$(VENV_CACHE)" "$(VENV_DIR)/bin/python" -m compiler.server.distribution

repo: setup ## Compile $(MANIFEST) into $(REPO)
	$(COMPILER) build --manifest $(MANIFEST) --output $(REPO)

build: repo

serve: repo ## Build, then serve $(REPO) in tritonserver (Ctrl-C stops it)
	$(COMPILER) serve --repository $(REPO) --manifest $(MANIFEST) --engine $(ENGINE) \
		--http-port $(HTTP_PORT) --grpc-port $(GRPC_PORT) --metrics-port $(METRICS_PORT) $(if $(VARIANT),--variant $(VARIANT))

verify: repo ## Build, then check every model in a real tritonserver against eager PyTorch
	$(COMPILER) verify --manifest $(MANIFEST) --repository $(REPO) $(if $(VARIANT),--variant $(VARIANT))

soak: repo ## 20,000 HTTP+gRPC requests at concurrency 16 against bert, answers checked (SOAK_MODEL=, SOAK_REQUESTS=)
	$(COMPILER) soak --manifest $(MANIFEST) --repository $(REPO) --model $(SOAK_MODEL) --requests $(SOAK_REQUESTS) --concurrency 16

bench: repo ## Served vs eager PyTorch vs PyTriton, and build vs raw trace; writes docs/benchmarks.{md,png}
	$(COMPILER) bench --manifest $(MANIFEST) --repository $(REPO)

profile: repo ## Model Analyzer sweep of MODEL= (QUICK=1 for a short one); best config as a variants: snippet
	$(COMPILER) profile $(MODEL) --repository $(REPO) $(if $(QUICK),--quick)

check: setup ## Lint REPO (any Triton repository) against its models and target release
	$(COMPILER) check $(REPO)

test: setup ## Run the whole test suite (real tritonserver end-to-end tests included)
	$(PY) -m pytest --durations=15 $(XDIST) $(PYTEST_ARGS)

test-fast: setup ## Run the tests that need neither big models nor tritonserver
	$(PY) -m pytest -m "not slow and not tritonserver" $(XDIST) $(PYTEST_ARGS)

schema: setup ## Regenerate proto/models.schema.json, docs/manifest.md and docs/check.md's rule list
	$(COMPILER) schema

container-files: setup ## Regenerate Dockerfile and docker-compose.yml from $(MANIFEST)
	$(COMPILER) container-files --manifest $(MANIFEST)

lint: setup ## ruff and mypy (strict about untyped defs), on the package and the tests
	$(PY) -m ruff check compiler tests
	$(PY) -m mypy

clean: ## Remove the built repository (not the cached venv)
	rm -rf $(REPO) Triton/.models.*
