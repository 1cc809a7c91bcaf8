# Quick start: `make demo` (set up, run the demo on the embedded simulator), `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench simulate cassettes notebook live clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cfanalytics demo

test: $(STAMP)
	$(BIN)/python -m pytest

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
	rm -rf $(VENV) demo-out bench-out .pytest_cache .mypy_cache .ruff_cache
