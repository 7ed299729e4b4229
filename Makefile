# htflow: `make demo` and `make test` work on a fresh clone with only python3.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
# Python writes the compiled module files it makes (where PYTHONDONTWRITEBYTECODE is set, every new
# process would compile all it imports again: seconds per process)
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test fuzz venv browser lint bench bench-al clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# not byte-compiled here: of the venv's 21,000 modules the tests import about a third, and each
	@# is compiled on its first import instead (docs/decisions.md)
	$(BIN)/python -m pip install --quiet --no-compile -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)  ## run the bundled campaign on the embedded store (./htflow-data)
	$(BIN)/htflow run workflows/demo.yaml

# two pytest workers (pytest-xdist): the tests are single-threaded, the target machine has 2 cores
TEST_WORKERS ?= 2

test: $(STAMP) browser  ## run the test suite
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

fuzz: $(STAMP)  ## the Hypothesis fuzz suite at full size (make test runs 40 examples per property)
	HTFLOW_FUZZ=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) tests/test_fuzz.py

# The dashboard's browser test drives a system Chromium (Playwright's own browser download
# cannot work offline). Installed with apt-get where we may; otherwise that test is skipped.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Chromium for the dashboard's browser test (apt-get install chromium)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    chromium >/dev/null) || echo "warning: could not install Chromium; the browser test will be skipped"; \
	else echo "note: no Chromium here and no root apt-get: the browser test will be skipped" \
	  "(install the chromium package to run it)"; fi

lint: $(STAMP)
	$(BIN)/ruff check htflow tests benchmarks

bench: $(STAMP)  ## store benchmark; table goes to docs/store-benchmark-latest.md
	$(BIN)/python benchmarks/store_benchmark.py --out docs/store-benchmark-latest.md

bench-al: $(STAMP)  ## active-learning benchmark (~15 min); table to docs/active-learning-latest.md
	$(BIN)/python benchmarks/active_learning.py --seeds 10 --out docs/active-learning-latest.md

clean:
	rm -rf $(VENV) htflow-data .pytest_cache
