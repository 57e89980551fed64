# The two commands of the README: `make run` and `make test`. Each sets up .venv first when needed.
# `make test-fast`: the unit tests only, for a change to one module (docs/development.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: run test test-fast setup report clean

$(BIN)/snakemake: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/snakemake

# The default workflow on the embedded synthetic data, then the HTML report.
run: setup
	$(BIN)/snakemake --cores $(CORES) --resources gpu=1
	$(BIN)/snakemake --report results/report.html
	@echo "Report: results/report.html  Metrics: results/report/metrics.csv"

# Two pytest-xdist workers, a test file each at a time (--dist loadfile): a file's module fixtures (a finished run,
# a SLURM cluster) are built once, and the Kaggle stub's fixed port 7777 (test_kaggle.py) is served by one worker.
# The files in the order tests/conftest.py collects them, longest first (--no-loadscope-reorder).
TEST_WORKERS ?= 2

test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# No end-to-end workflow run, no SLURM cluster, no training longer than a step or two (markers in pyproject.toml).
test-fast: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not workflow and not slow"

clean:
	rm -rf results .snakemake
