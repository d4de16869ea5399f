# mgrecs: `make demo` runs the whole pipeline, `make test` runs the suite.
# Only Python 3.11+ and make are needed; uv is installed into .tools/ on first use.
PYTHON ?= python3
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
VENV   := .venv
BIN    := $(VENV)/bin
MANIFESTS := pyproject.toml uv.lock $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)

.PHONY: install demo smoke test lint format clean bench-api

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv

$(VENV)/.installed: $(UV) $(MANIFESTS)
	$(UV) sync --all-packages --frozen --python $(PYTHON)
	touch $@

install: $(VENV)/.installed

demo: install  ## the whole pipeline on the embedded stack; Ctrl-C stops it
	$(BIN)/mgrecs demo

smoke: install  ## same as demo, exits 0 once the region endpoint answers correctly
	$(BIN)/mgrecs smoke

test: install  ## the whole suite (real PostgreSQL and Kafka-protocol broker)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy libs

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(TOOLS) .run

bench-api: install  ## write/train/infer at scale, then API latency (figures in bench/RESULTS.md)
	$(BIN)/python bench/api_latency.py $(BENCH_ARGS)
