# heifkit: `make demo` installs into .venv and converts a bundled sample; `make test` runs everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Everything is installed from the lock files in requirements/, every package pinned and hashed
# (docs/development.md: what each holds, and how `make lock` moves them). make test-latest swaps these for the
# newest releases.
PIP_REQS ?= --require-hashes -r requirements/pip.txt
INSTALL_REQS ?= --require-hashes -r requirements/install.txt
TEST_REQS ?= --require-hashes -r requirements/test.txt
PIP_INSTALL := $(BIN)/python -m pip install --quiet
# What the installed heifkit is built from: make install rebuilds only when one of these changed.
SOURCES := setup.py pyproject.toml MANIFEST.in $(shell find src -type f \( -name '*.py' -o -name '*.c' -o -name py.typed \) -not -name '_binding.c')
# make fuzz: seconds per target, and more options of fuzz/run.py (e.g. FUZZ_ARGS="--asan --targets read")
FUZZ_SECONDS ?= 300
FUZZ_ARGS ?=
# make soak: the concurrency soak (tests/test_soak.py) for this many seconds
SOAK_SECONDS ?= 30
# make check: pytest's options (e.g. PYTEST_ARGS="-x tests/test_read_modes.py")
PYTEST_ARGS ?=

.PHONY: venv install test-tools demo test check test-latest lint typecheck pytest pytest-fast bench docs dist \
	lock clean fuzz soak

# Stamps in the virtual environment record what was installed, so that make check reinstalls nothing when
# neither the sources nor the lock files changed.
$(VENV)/.pip-installed: requirements/pip.txt
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) $(PIP_REQS)
	touch $@

venv: $(VENV)/.pip-installed

# Non-editable install, as users get it; the locked build deps are installed first so the build is not isolated.
# build/ is removed first: setuptools copies what it finds there into the package, so a module that was
# deleted or renamed in the sources would otherwise come back from an earlier build.
$(VENV)/.heifkit-installed: $(VENV)/.pip-installed requirements/install.txt $(SOURCES)
	$(PIP_INSTALL) $(INSTALL_REQS)
	rm -rf build
	$(PIP_INSTALL) --no-build-isolation --no-deps --force-reinstall .
	touch $@

install: $(VENV)/.heifkit-installed

$(VENV)/.test-tools-installed: $(VENV)/.heifkit-installed requirements/test.txt
	$(PIP_INSTALL) $(TEST_REQS)
	touch $@

test-tools: $(VENV)/.test-tools-installed

demo: install
	$(BIN)/python examples/demo.py examples/libheif_example.heic demo-out

lint: test-tools
	$(BIN)/ruff check src tests benchmarks examples fuzz docs/conf.py docs/_static/hdr/make_pictures.py setup.py
	$(BIN)/ruff format --check src tests benchmarks examples fuzz docs/conf.py docs/_static/hdr/make_pictures.py setup.py

typecheck: test-tools
	$(BIN)/mypy

# Everything, as CI runs it (.ci/run).
pytest: test-tools
	$(BIN)/python -m pytest -q tests $(PYTEST_ARGS)

# The tests not marked slow (no distributions built, no soak, fuzzing, sweeps, leak loops, process storms or
# big files; tests/conftest.py says which corpus files stand for the rest), a file per worker on every core.
pytest-fast: test-tools
	$(BIN)/python -m pytest -q -m "not slow" -n logical --dist loadfile tests $(PYTEST_ARGS)

test: lint typecheck pytest

# The development loop: ruff, mypy and the fast tests, on the installed build (rebuilt only if sources changed).
check: lint typecheck pytest-fast

# The same suite on the newest release of every tool and of the oracle (pillow-heif), in .venvs/latest; not
# part of CI. A difference from make test is an upstream change to look at (docs/pins.md).
test-latest:
	rm -rf .venvs/latest
	$(MAKE) VENV=.venvs/latest PIP_REQS="--upgrade pip" INSTALL_REQS="--upgrade -r requirements/install.in" \
		TEST_REQS="--upgrade -r requirements/test.in" test
	.venvs/latest/bin/python -m pip list --format=freeze > .venvs/latest/versions.txt
	@echo "versions tested: .venvs/latest/versions.txt"

# Regenerates every lock file from the .in files beside it (requirements/lock.sh), keeping what is pinned
# unless UPGRADE=1 (the newest release of everything) or UPGRADE="pkg other" (those packages only).
UPGRADE ?=
lock:
	[ -x .venvs/lock/bin/uv ] || { $(PYTHON) -m venv .venvs/lock && \
		.venvs/lock/bin/python -m pip install --quiet --require-hashes -r requirements/uv.txt; }
	UV=$(CURDIR)/.venvs/lock/bin/uv UPGRADE="$(UPGRADE)" sh requirements/lock.sh

# HTML in docs/_build/html; warnings are errors. The API pages document the installed heifkit.
docs: install
	$(PIP_INSTALL) --require-hashes -r requirements/docs.txt
	$(BIN)/python -m sphinx -W --keep-going -E -b html docs docs/_build/html

# dist/: the sdist and a manylinux wheel. Built as a release would be, in a fresh environment that holds the
# locked build requirements only (python -m build --no-isolation there: an isolated build would install
# pyproject.toml's requirements unpinned). auditwheel checks that the extension needs nothing but glibc, and
# names the manylinux tag its symbol versions allow.
dist: test-tools
	rm -rf dist build/dist .venvs/dist
	$(PYTHON) -m venv .venvs/dist
	.venvs/dist/bin/python -m pip install --quiet $(PIP_REQS)
	.venvs/dist/bin/python -m pip install --quiet --require-hashes -r requirements/build.txt
	.venvs/dist/bin/python -m build --no-isolation --outdir build/dist .
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/auditwheel repair --wheel-dir dist build/dist/*.whl
	cp build/dist/*.tar.gz dist/
	$(BIN)/auditwheel show dist/*.whl
	$(BIN)/twine check --strict dist/*

# Coverage-guided fuzzing (fuzz/run.py): each target for FUZZ_SECONDS, seeded with tests/corpus; the corpus
# each target grows stays in .fuzz. Findings are written there too, and make fuzz fails.
fuzz: test-tools
	$(BIN)/python fuzz/run.py --all --seconds $(FUZZ_SECONDS) $(FUZZ_ARGS)

# 8 threads mixing decode, encode and the Pillow plugin for SOAK_SECONDS (make test runs it for 10 s).
soak: test-tools
	HEIFKIT_SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/python -m pytest -q tests/test_soak.py

bench: test-tools
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/bulk_convert.py

clean:
	rm -rf $(VENV) .venvs build dist src/*.egg-info src/heifkit/_native/_binding.* demo-out docs/_build .fuzz
