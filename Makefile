# htflow: `make demo` and `make test` work on a fresh clone with only python3.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: demo test venv lint bench bench-al clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)  ## run the bundled campaign on the embedded store (./htflow-data)
	$(BIN)/htflow run workflows/demo.yaml

test: $(STAMP)  ## run the test suite
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check htflow tests benchmarks

bench: $(STAMP)  ## store benchmark; table goes to docs/store-benchmark-latest.md
	$(BIN)/python benchmarks/store_benchmark.py --out docs/store-benchmark-latest.md

bench-al: $(STAMP)  ## active-learning benchmark (~15 min); table to docs/active-learning-latest.md
	$(BIN)/python benchmarks/active_learning.py --seeds 10 --out docs/active-learning-latest.md

clean:
	rm -rf $(VENV) htflow-data .pytest_cache
