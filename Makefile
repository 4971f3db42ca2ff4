# celery-live: `make run` starts the dashboard, `make test` runs every test.
# Both install what they need (idempotently: stamps skip work already done).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMPS := $(VENV)/.stamps
CHROMIUM := /usr/bin/chromium

.PHONY: run test lint bench install install-dev browser vendor clean help

help:
	@echo "make run    - start web (Daphne), worker, beat and the recorder on http://127.0.0.1:$${PORT:-8000}"
	@echo "make test   - install test deps (and Debian's chromium) and run every test"
	@echo "make lint   - ruff"
	@echo "make bench  - every benchmark side by side with Flower and celery-progress -> docs/benchmarks.md"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMPS)/runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/dev: requirements-dev.txt $(STAMPS)/runtime
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $@

install: $(STAMPS)/runtime
install-dev: $(STAMPS)/dev

# The page's browser libraries (frontend/package.json: uPlot, for the charts), installed by
# npm and copied into the app's static files (no CDN). The copies are committed as well, so
# the wheel and a machine without npm have them; this refreshes them from the lock file.
UPLOT := frontend/node_modules/uplot
$(STAMPS)/npm: frontend/package.json frontend/package-lock.json | $(BIN)/python
	@if command -v npm >/dev/null; then \
	  cd frontend && npm ci --no-audit --no-fund --loglevel=error && cd .. && \
	  mkdir -p frontend/static/vendor/uplot && \
	  cp $(UPLOT)/dist/uPlot.iife.min.js $(UPLOT)/dist/uPlot.min.css $(UPLOT)/LICENSE frontend/static/vendor/uplot/; \
	else echo "npm not found: keeping the committed copies in frontend/static/vendor/"; fi
	@mkdir -p $(STAMPS) && touch $@

vendor: $(STAMPS)/npm

# Debian's Chromium for the browser tests (Playwright cannot download browsers here),
# nginx to run the compose proxy's deploy/nginx.conf in front of two Daphnes, and a compose
# client where the docker client has none, so docker-compose.yml is validated.
browser:
	@missing=""; \
	[ -x $(CHROMIUM) ] || missing="chromium"; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	if command -v docker >/dev/null && ! docker compose version >/dev/null 2>&1 \
	   && ! command -v docker-compose >/dev/null; then missing="$$missing docker-compose"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "Installing from Debian:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# The local demo: DEBUG on (unless DJANGO_DEBUG says otherwise), so no secret key is needed
# and the dashboard is login-free: it listens on 127.0.0.1 unless HOST says otherwise.
run: install vendor
	cd backend && DJANGO_DEBUG=$${DJANGO_DEBUG:-1} ../$(BIN)/python manage.py run_dashboard

test: install-dev browser vendor
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The benchmarks are modules of scripts.bench, run from here; the backend goes on PYTHONPATH
# (absolute: the stacks' processes run in backend/) for celery_live and the demo host.
bench: install-dev browser
	PYTHONPATH=$(CURDIR)/backend $(BIN)/python -m scripts.bench.run_all

clean:
	rm -rf $(VENV) .data test-artifacts frontend/node_modules
