# coldchain: the whole set-up on a fresh Debian machine is `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Debian packages the test suite talks to (real parts, not mocks); docker-compose only reads
# deploy/centre/compose.yaml (no daemon, no images); fonts-wqy-microhei is the Chinese face
# the hub serves to the web UI and embeds in PDFs (dashboards/fonts.py).
TEST_SERVICES := mosquitto victoria-metrics chromium docker-compose fonts-wqy-microhei postgresql

.PHONY: demo test test-fast lint format typecheck lock services clean

# A venv per purpose would double the disk; one venv, with a stamp per lock file installed.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.hub.stamp: requirements/hub.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/hub.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev.stamp: requirements/dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@ $(VENV)/.hub.stamp

demo: $(VENV)/.hub.stamp
	$(BIN)/coldchain demo

services:
	@scripts/install-services.sh $(TEST_SERVICES)

# Two processes (pytest-xdist): every test starts its own services on free ports in its own
# temporary directory, so they run side by side; the suite takes about half as long.
test: $(VENV)/.dev.stamp services lint
	$(BIN)/pytest -q -n 2

# The inner loop, under 3 minutes: every test but those marked slow (@pytest.mark.slow: broker
# outages, the hub or agent killed mid-flight, the simulated week, the accelerated run, the
# demo, headless browsers, long alert scenarios), no lint, in two processes; stops at the
# first failure.
test-fast: $(VENV)/.dev.stamp services
	$(BIN)/pytest -q -x -m "not slow" -n 2

lint: $(VENV)/.dev.stamp
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@$(MAKE) --no-print-directory typecheck

# mypy --strict over every package, tests and benchmarks (the files are listed under
# [tool.mypy] in pyproject.toml); part of lint, so of `make test`.
typecheck: $(VENV)/.dev.stamp
	$(BIN)/mypy

format: $(VENV)/.dev.stamp
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Re-pin every dependency (needs network); commit the changed lock files.
lock: | $(BIN)/python
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra agent -o requirements/agent.lock --python $(BIN)/python
	$(BIN)/uv pip compile pyproject.toml --extra hub --extra simulator -o requirements/hub.lock --python $(BIN)/python
	$(BIN)/uv pip compile pyproject.toml --extra dev -o requirements/dev.lock --python $(BIN)/python

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-data
