# Two commands set everything up on a fresh machine:
#   make run   - install into .venv, migrate, seed demo data, serve on http://localhost:$MCGIP_PORT (8000) with a worker
#   make test  - install test tools (pytest, Playwright on Debian's Chromium, PostgreSQL), run the whole suite

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
MCGIP := $(VENV)/bin/mcgip
# Bind address: MCGIP_HOST / MCGIP_PORT from the environment (or `make run MCGIP_PORT=9000`).
MCGIP_HOST ?= 127.0.0.1
MCGIP_PORT ?= 8000
export MCGIP_HOST MCGIP_PORT

.PHONY: run install test test-tools lint typecheck clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

webui/node_modules/.installed: webui/package-lock.json
	cd webui && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

install: $(VENV)/.installed webui/node_modules/.installed

# One process migrates, seeds (a no-op the second time) and serves; the URL and demo logins are
# printed last, once the server answers.
run: install
	@$(MCGIP) serve --demo --with-worker

$(VENV)/.test-installed: $(VENV)/.installed pyproject.toml
	$(PIP) install --quiet -e '.[test]'
	touch $@

# System packages the tests drive for real: Debian's Chromium (never a downloaded browser), PostgreSQL and
# Orthanc with its DICOMweb plugin (the PACS of the DICOMweb import/export tests).
test-tools: install $(VENV)/.test-installed
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing Debian chromium"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi
	@if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "installing PostgreSQL"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	fi
	@if ! command -v dciodvfy >/dev/null 2>&1; then \
	  echo "installing dicom3tools (dciodvfy checks de-identified DICOM files)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dicom3tools >/dev/null; \
	fi
	@if [ ! -x /usr/sbin/Orthanc ] || [ ! -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ]; then \
	  echo "installing Orthanc and its DICOMweb plugin"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq orthanc orthanc-dicomweb >/dev/null; \
	fi

# The suite starts (and stops) its own throwaway PostgreSQL cluster and Orthanc; MCGIP_TEST_REQUIRE_PG and
# MCGIP_TEST_REQUIRE_ORTHANC make a missing one an error instead of a skip.
test: test-tools lint
	MCGIP_TEST_REQUIRE_PG=1 MCGIP_TEST_REQUIRE_ORTHANC=1 $(PY) -m pytest

# Style, types, architecture boundaries (import-linter contracts in pyproject.toml), dead code
# (vulture, reviewed whitelist in vulture_whitelist.py) and dependencies (deptry); `make test` runs it first.
lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check server trainer tests bench migrations
	$(VENV)/bin/ruff format --check server trainer tests bench migrations
	$(VENV)/bin/mypy server trainer
	$(VENV)/bin/lint-imports
	$(VENV)/bin/vulture
	$(VENV)/bin/deptry .

typecheck: $(VENV)/.test-installed
	$(VENV)/bin/mypy server trainer

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
