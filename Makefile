# Quick start: `make demo` (set up, run the demo on the embedded simulator), `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The lowest versions pyproject.toml allows of each runtime dependency (.ci/lowest.txt), the
# test tools at their usual versions.
LOWEST := .venv-lowest
LOWEST_STAMP := $(LOWEST)/.installed

.PHONY: demo test test-lowest lint bench simulate cassettes notebook live clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

$(LOWEST_STAMP): pyproject.toml .ci/lowest.txt
	test -x $(LOWEST)/bin/python || $(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(LOWEST)/bin/python -m pip install --quiet -c .ci/lowest.txt -e '.[test]'
	touch $(LOWEST_STAMP)

demo: $(STAMP)
	$(BIN)/cfanalytics demo

test: $(STAMP)
	$(BIN)/python -m pytest

# The fast tests (not slow, no browser) against the lowest supported versions.
test-lowest: $(LOWEST_STAMP)
	$(LOWEST)/bin/python -m pytest -m 'not slow and not browser'

lint: $(STAMP)
	$(BIN)/ruff check cfanalytics tests bench
	$(BIN)/ruff format --check cfanalytics tests bench
	$(BIN)/mypy cfanalytics
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/bench_cli_start.py
	$(BIN)/python bench/bench_simulator.py
	$(BIN)/python bench/bench_replay.py --polls 5000 --vcrpy-polls 5000
	$(BIN)/python bench/bench_events.py
	$(BIN)/python bench/bench_timing.py
	$(BIN)/python bench/bench_timeline.py
	$(BIN)/python bench/bench_soak.py --jobs 1000 --faults 0.1
	$(BIN)/python bench/bench_queue.py --jobs 10000 --latency 0.01
	$(BIN)/python bench/bench_forecast.py
	$(BIN)/python bench/bench_history.py --sizes 10M,100M

cassettes: $(STAMP)
	$(BIN)/cfanalytics make-cassette demo
	$(BIN)/cfanalytics make-cassette troubled
	$(BIN)/cfanalytics make-cassette history

notebook: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[notebook]'
	$(BIN)/jupyter lab notebooks/

live: $(STAMP)
	$(BIN)/voila notebooks/live_queue.ipynb --Voila.ip=127.0.0.1 --port=8866

simulate: $(STAMP)
	$(BIN)/cfanalytics simulate

clean:
	rm -rf $(VENV) $(LOWEST) demo-out bench-out .pytest_cache .mypy_cache .ruff_cache
