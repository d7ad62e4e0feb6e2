# Set-up and everyday commands. `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean system-deps node-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sunarchive demo $(ARGS)

# The suite mostly waits (servers, subprocesses, PGlite), so it runs in TEST_WORKERS processes,
# one test file per process at a time (module fixtures stay in one process); TEST_WORKERS=0
# runs it in this process.
TEST_WORKERS ?= 2

test: $(STAMP) system-deps node-deps
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile $(ARGS)

# The unit tests only (in-process: no store file, no server, no subprocess): under a minute.
# Markers engine, integration and browser select the rest, e.g. ARGS='-m "not browser"'
# with `make test`.
test-fast: $(STAMP)
	$(BIN)/pytest -q -m unit $(ARGS)

# The PostgreSQL tests start their own throwaway server from the installed binaries
# (or use SUNARCHIVE_TEST_PG_URL); on a machine without them, install Debian's package.
# The dashboard test drives Debian's chromium with Playwright (which downloads no browser);
# it is installed the same way, and so is the Mosquitto broker the MQTT source tests start.
system-deps:
	@if [ -z "$$SUNARCHIVE_TEST_PG_URL" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	    && ! command -v initdb >/dev/null 2>&1; then \
	  echo "installing PostgreSQL (Debian package postgresql) for the storage tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    postgresql >/dev/null; \
	fi
	@if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then \
	  echo "installing Chromium (Debian package chromium) for the dashboard test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    chromium >/dev/null; \
	fi
	@if [ ! -x /usr/sbin/mosquitto ] && ! command -v mosquitto >/dev/null 2>&1; then \
	  echo "installing Mosquitto (Debian package mosquitto) for the MQTT source tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    mosquitto >/dev/null; \
	fi
	@if [ ! -x /usr/bin/influxd ]; then \
	  echo "installing InfluxDB 1.x (Debian package influxdb) for the InfluxDB mirror tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    influxdb >/dev/null; \
	fi
	@if [ ! -x /usr/bin/influx ]; then \
	  echo "installing the influx CLI (Debian package influxdb-client) for the write tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    influxdb-client >/dev/null; \
	fi

# The TimescaleDB layout runs in CI on PGlite (PostgreSQL in WASM with TimescaleDB, from npm):
# tests/pglite/package-lock.json pins it; tests/support/pglite_server.py serves it to psycopg.
node-deps:
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "installing Node.js and npm (Debian packages nodejs, npm) for the PGlite tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    nodejs npm >/dev/null; \
	fi
	@if [ ! -d tests/pglite/node_modules/@electric-sql/pglite/dist ]; then \
	  npm ci --no-audit --no-fund --prefix tests/pglite; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/reduce.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/query.py
	$(BIN)/python bench/pg_engine.py
	$(BIN)/python bench/mirror.py
	$(BIN)/python bench/lp_write.py
	$(BIN)/python bench/import_csv.py
	$(BIN)/python bench/import_slow_series.py
	$(BIN)/python bench/api.py --db bench-30d.duckdb
	$(BIN)/python bench/read_under_write.py
	$(BIN)/python bench/schema_growth.py

clean:
	rm -rf $(VENV) sunarchive-data
