# The commands a person types. `.ci/run` calls the same ones.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
BENCH  ?=
SCENARIOS ?=
# P1 counts instructions under Valgrind's callgrind: installed here when missing (Debian; CI runs as root)
VALGRIND := command -v valgrind >/dev/null || (apt-get update && apt-get install -y valgrind)
PYTEST_ARGS ?=

.PHONY: up test lint fmt bench bench-quick clean browser alertmanager prometheus matrix screenshots soak scenarios accuracy

# (re)install when pyproject.toml changes; creates .venv when missing
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[server,dev]'
	touch $(STAMP)

## run the whole pipeline here: embedded PostgreSQL and Redis unless VSMMON_*_URL are set
up: $(STAMP)
	$(VENV)/bin/vsmmon up

## unit tests (no services) and integration tests (real PostgreSQL, Redis, Celery workers)
test: $(STAMP) browser alertmanager prometheus
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## headless Chromium for the browser tests: Debian's package, driven by Playwright (no browser download)
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	test -x $(CHROMIUM) || ($(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

## Alertmanager for the delivery tests: Debian's package, like chromium (the tests run their own instance on a
## free loopback port; on a host with systemd the package also starts its own service on :9093)
ALERTMANAGER ?= /usr/bin/prometheus-alertmanager
alertmanager:
	test -x $(ALERTMANAGER) || ($(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus-alertmanager)

## Prometheus and promtool for the scrape and rules tests: Debian's package (its recommended exporters left out;
## the tests run their own server on a free loopback port)
PROMETHEUS ?= /usr/bin/prometheus
prometheus:
	test -x $(PROMETHEUS) || ($(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus)

## the README's screenshots of the dashboard, taken by the browser tests' tooling
screenshots: $(STAMP) browser
	VSMMON_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(VENV)/bin/pytest tests/browser/test_screenshots.py -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy vsmmon

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## benchmarks: `make bench`, or one of them: `make bench BENCH=p3_ingest`
bench: $(STAMP)
	$(VALGRIND)
	$(PY) -m bench $(BENCH)

bench-quick: $(STAMP)
	$(VALGRIND)
	$(PY) -m bench --quick $(BENCH)

## 1,000 simulated agents for 10 minutes against `vsmmon up`; SOAK_SECONDS=60 for a short run (prints only)
soak: $(STAMP)
	$(PY) -m bench.soak

## the accuracy of forecasts, intervals and change points on simulated series (about a minute, no services)
accuracy: $(STAMP)
	$(PY) -m bench.accuracy

## scenario suite with labelled truth on real services (~30 min; not part of `make test`), results in BENCHMARKS.md;
## some of them: `make scenarios SCENARIOS="steady sigkill"`; exit code 1 on a missed alert or a false positive
scenarios: $(STAMP)
	$(PY) -m bench.scenarios $(SCENARIOS)

## the plugin on Celery 5.3, 5.4, 5.5 and the newest, every pool, each in a slim venv under .matrix/ (not part of
## `make test`; `make matrix MATRIX="5.4.0"` for one); needs the test services (VSMMON_TEST_BROKER_URL)
MATRIX ?=
matrix: $(STAMP)
	$(PY) -m tests.matrix $(MATRIX)

clean:
	rm -rf $(VENV) .matrix .vsmmon .pytest_cache .mypy_cache .ruff_cache
