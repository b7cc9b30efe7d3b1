# Two commands: `make demo` and `make test`. Each creates .venv on first use and installs
# graphsel into it in editable mode, with torch pinned by constraints.txt.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test install bench bench-graph bench-select bench-train bench-transfer bench-quality bench-spark bench-syncrec peer-swr clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/graphsel demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench-graph: $(STAMP)
	$(PY) benchmarks/bench_graph.py

bench-select: $(STAMP)
	$(PY) benchmarks/bench_select.py

bench-train: $(STAMP)
	$(PY) benchmarks/bench_train.py

bench-transfer: $(STAMP)
	$(PY) benchmarks/bench_transfer.py

bench-quality: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_quality.py

bench-spark: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[spark]'
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_spark.py

bench-syncrec: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_syncrec.py

peer-swr: $(STAMP)
	$(PY) benchmarks/peer_swr.py

bench: bench-graph bench-select bench-train bench-transfer bench-spark

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
