# Two entry points for a fresh machine: `make app` and `make test`.
# Both create (or reuse) .venv and install the pinned stack from requirements.txt.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup app lint test test-fast browser bench clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

app: setup
	$(PY) app.py

# The browser test needs Debian's chromium; install it when missing (root, as on CI machines). Under CI
# (CI=true) a chromium that cannot be installed stops the run here, loudly; elsewhere the test skips.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then :; \
	  elif [ "$$CI" = true ]; then echo "error: chromium is missing and could not be installed; CI must run the browser test" >&2; exit 1; \
	  else echo "chromium missing: the browser test will be skipped (run 'sudo apt-get install chromium')"; fi; }

# ruff's rule set and formatting (pyproject.toml); .ci/run runs it before the tests.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup browser
	HF_HUB_OFFLINE=1 $(PY) -m pytest

test-fast: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m "not slow"

# PYTHONPATH: each bench measures this checkout's judo, whichever one the venv has installed.
bench: setup
	@missed=; for b in bench/*.py; do echo "== $$b"; PYTHONPATH=$(CURDIR) $(PY) $$b || missed="$$missed $$b"; done; \
	if [ -n "$$missed" ]; then echo "targets missed or failed:$$missed"; exit 1; fi

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis test-artifacts
