# Two commands: `make demo` and `make test`. Each creates .venv on first use and installs
# graphsel into it in editable mode, with torch pinned by constraints.txt.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test install notebooks lab bench bench-graph bench-select bench-scaling bench-train bench-transfer bench-quality bench-continual bench-spark bench-syncrec bench-threads peer-swr clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/graphsel demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# Executes every notebook (the synthetic default; the Taobao head when GRAPHSEL_DATA is set)
# into build/notebooks/, as .ipynb with outputs and as .html; notebooks/ is left as it is.
# Logs are kept to errors: the kernel warns that a local kernel talks over TCP, and the
# HTML export notes that inline figures have no alt text.
notebooks: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(VENV)/bin/jupyter nbconvert --to notebook --execute \
	    --output-dir build/notebooks --ExecutePreprocessor.timeout=600 \
	    '--ExecutePreprocessor.extra_arguments=["--IPKernelApp.log_level=ERROR"]' notebooks/*.ipynb
	$(VENV)/bin/jupyter nbconvert --to html --log-level ERROR build/notebooks/*.ipynb

# Opens the notebooks in JupyterLab (the `notebooks` extra).
lab: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[notebooks]'
	$(VENV)/bin/jupyter lab notebooks/

bench-graph: $(STAMP)
	$(PY) benchmarks/bench_graph.py

bench-select: $(STAMP)
	$(PY) benchmarks/bench_select.py

bench-scaling: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_scaling.py --plot scaling.png

bench-train: $(STAMP)
	$(PY) benchmarks/bench_train.py

bench-transfer: $(STAMP)
	$(PY) benchmarks/bench_transfer.py

bench-quality: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_quality.py

bench-continual: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_continual.py

bench-spark: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[spark]'
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_spark.py

bench-syncrec: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_syncrec.py

# no OMP_WAIT_POLICY here: the benchmark compares the thread policies itself
bench-threads: $(STAMP)
	$(PY) benchmarks/bench_threads.py

peer-swr: $(STAMP)
	$(PY) benchmarks/peer_swr.py

bench: bench-graph bench-select bench-train bench-transfer bench-spark

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
