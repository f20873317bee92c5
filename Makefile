# Two entry points, each doing all set-up it needs on a fresh Debian machine:
#   make demo   installs what is missing, then runs the end-to-end job on bundled inputs
#   make test   installs what is missing, then runs the test suite
# A second run is fast: the venv is rebuilt only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
TORCH  := torch==2.13.0
DEMO_OUT ?= demo-run
APT_PACKAGES := chromium chromium-headless-shell tesseract-ocr fonts-dejavu-core

.PHONY: demo test test-fast install system-deps js-deps clean

demo: install
	$(VENV)/bin/vlforge demo --out $(DEMO_OUT)

test: install
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q

# The edit loop: everything but the tests marked slow, browser or airflow (see README).
test-fast: install
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -m "not slow and not browser and not airflow"

install: system-deps $(STAMP) js-deps

# Debian packages only when one is missing (apt-get needs root, as on these machines).
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# Charting libraries (D3, ECharts, Chart.js + svgcanvas) for the chart tests, from the npm
# registry at the versions in tests/js/package-lock.json; tests load them from disk.
js-deps:
	@command -v npm >/dev/null 2>&1 || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm; }
	@test -f tests/js/node_modules/.package-lock.json -a tests/js/node_modules/.package-lock.json -nt tests/js/package-lock.json \
	  || npm ci --prefix tests/js --no-audit --no-fund

# torch first, from the CPU wheel on disk: an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[dev,airflow]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
