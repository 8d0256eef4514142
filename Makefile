# Everything a fresh clone needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test check lint types format sandbox sandbox-spec catalog swagger-ui protos clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tokenward demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts

types: $(STAMP)
	$(VENV)/bin/mypy

check: lint types test

format: $(STAMP)
	$(VENV)/bin/ruff format src tests bench scripts
	$(VENV)/bin/ruff check --fix src tests bench scripts

# Regenerate the tool catalogs (providers/*/tools.yaml, schemas.json) from Discord's OpenAPI
# description and the overlays. The spec: TOKENWARD_DISCORD_OPENAPI, else
# ../shared/reference/discord-openapi/openapi.json.
catalog: $(STAMP)
	$(PY) scripts/generate_catalog.py

sandbox: $(STAMP)
	$(VENV)/bin/tokenward sandbox

# Regenerate the sandbox's copy of Discord's OpenAPI spec (needs ../shared or TOKENWARD_DISCORD_OPENAPI).
sandbox-spec: $(STAMP)
	$(PY) scripts/generate_sandbox_spec.py

# Refresh the Swagger UI files /docs serves (from npm's swagger-ui-dist; needs npm).
swagger-ui: $(STAMP)
	$(PY) scripts/vendor_swagger_ui.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# Regenerate the compatibility port's protobuf and gRPC modules (committed) from
# src/tokenward/compat/proto/*.proto: `make protos` (needs the dev extra's grpcio-tools).
protos: $(STAMP)
	$(PY) -m grpc_tools.protoc -I src --python_out=src --pyi_out=src --grpc_python_out=src \
		src/tokenward/compat/proto/errdetails.proto \
		src/tokenward/compat/proto/connected_accounts.proto \
		src/tokenward/compat/proto/tools.proto
