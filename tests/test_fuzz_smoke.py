"""The fuzz targets in CI: each runs under atheris for a few seconds (``fuzz/run.py``; ``make fuzz`` runs them
for minutes), and every saved input (``tests/fuzz_regressions``: inputs the fuzzer found, fixed since) goes
through every target.

The smoke runs the targets one after the other in the background while other tests run (``conftest``),
:data:`SECONDS` each (``HEIFKIT_FUZZ_SMOKE_SECONDS``), about 40 s in all, on the test corpus as seeds. A
finding fails the test with libFuzzer's report and the input's path.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import subproc
from conftest import background_results

pytestmark = pytest.mark.slow  # fuzzing (atheris), in child processes

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"
REGRESSIONS = Path(__file__).resolve().parent / "fuzz_regressions"
SECONDS = int(os.environ.get("HEIFKIT_FUZZ_SMOKE_SECONDS", "6"))


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"heifkit_fuzz_{name}", FUZZ / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(FUZZ))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(FUZZ))
    return module


run = _load("run")
TARGETS = ["parse", "read", "plugin", "encode", "save"]
ATHERIS = importlib.util.find_spec("atheris") is not None  # its wheels are for x86-64 Linux only (requirements/)


BACKGROUND_ORDER = 2


def background_jobs(tmp: Path) -> dict[str, Callable[[], tuple[int, list[Path], int, str]]]:
    """Each target's smoke run, in the background while other tests run (conftest.background_results)."""
    if not ATHERIS:
        return {}
    assert run.seeds(tmp / "seeds") > 50
    env = subproc.child_env()

    def one(name: str) -> tuple[int, list[Path], int, str]:
        executions, findings, status = run.run_target(name, SECONDS, env, root=tmp)
        log = (tmp / name / "log.txt").read_text(errors="replace")
        return executions, findings, status, log

    return {name: functools.partial(one, name) for name in TARGETS}


@pytest.fixture(scope="module")
def smoke() -> dict[str, tuple[int, list[Path], int, str]]:
    return background_results(__name__)


def test_every_target_is_smoked() -> None:
    assert set(TARGETS) == set(_load("targets").TARGETS)


@pytest.mark.skipif(not ATHERIS, reason="atheris is not installed (no wheel for this platform or Python)")
@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_smoke(target: str, smoke: dict[str, tuple[int, list[Path], int, str]]) -> None:
    executions, findings, status, log = smoke[target]
    assert status == 0 and not findings, f"{target}: finding {findings} (exit {status}):\n{log[-4000:]}"
    assert executions > 0, f"{target}: no execution:\n{log[-2000:]}"


REPLAY = """
import sys
sys.path.insert(0, sys.argv[1])
from targets import TARGETS
data = open(sys.argv[2], "rb").read()
for name, target in TARGETS.items():
    target(data)
print("ok")
"""


@pytest.mark.parametrize("path", sorted(REGRESSIONS.iterdir()), ids=lambda p: p.name)
def test_saved_inputs_pass_every_target(path: Path) -> None:
    try:
        proc = subproc.run_python(REPLAY, [str(FUZZ), str(path)], timeout=120, limit=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{path.name}: hangs")
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
