"""Running Python snippets in child processes that import the same heifkit as the test process."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import heifkit

TESTS = Path(__file__).resolve().parent
HEIFKIT_ROOT = Path(heifkit.__file__).resolve().parents[1]  # src/ in a checkout, site-packages when installed
MEMORY_LIMIT = 4 << 30  # RLIMIT_AS for children that parse hostile files


def child_env(**overrides: str) -> dict[str, str]:
    """The current environment, with PYTHONPATH led by this heifkit's root and tests/ (for ``oracle``)."""
    env = os.environ.copy()
    inherited = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([str(HEIFKIT_ROOT), str(TESTS), *inherited])
    env.update(overrides)
    return env


def limit_memory() -> None:
    """preexec_fn: cap the child's address space so a runaway allocation fails instead of exhausting RAM."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_python(
    code: str,
    args: Sequence[str] = (),
    *,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    limit: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``python -c code args...`` with captured text output; raises ``subprocess.TimeoutExpired`` on a hang."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else child_env(),
        preexec_fn=limit_memory if limit else None,
        cwd=str(TESTS),
    )
