"""Every example in the documentation runs: each page's ``pycon`` blocks are a doctest (tests/mddoctest.py),
run in a fresh interpreter per page, as a reader would run them. Pages may hold no other Python blocks (they
would not be tested), and the API reference names every public function, class, exception and option.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import heifkit
import mddoctest
import subproc

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md")) + [REPO / "README.md"]
QUICK_PAGES = {REPO / "README.md", DOCS / "quickstart.md"}  # make check runs these; make test every page
# Pages that explain rather than show: no examples required.
PROSE_PAGES = {"api.md", "architecture.md", "changelog.md", "development.md", "performance.md", "wheels.md"}
# Fence languages for what is not Python run by a reader: shell commands, file contents, directives.
NOT_PYTHON = {"sh", "console", "text", "toml", "make", "c", ""}


@pytest.mark.parametrize(
    "page",
    [pytest.param(p, id=str(p.relative_to(REPO)), marks=() if p in QUICK_PAGES else pytest.mark.slow) for p in PAGES],
)
def test_page_examples_pass(page: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(Path(mddoctest.__file__)), str(page)],
        capture_output=True,
        text=True,
        timeout=300,
        env=subproc.child_env(),
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-4000:]
    attempted = int(re.search(r": (\d+) examples, 0 failed", proc.stdout)[1])  # type: ignore[index]
    if page.name not in PROSE_PAGES:
        assert attempted > 0, f"{page.name} shows no runnable example"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_code_blocks_are_examples_or_not_python(page: Path) -> None:
    """Python belongs in ``pycon`` blocks (run as doctests); any other block must not be Python."""
    for line, language, body in mddoctest.code_blocks(page.read_text(encoding="utf-8")):
        if language == "pycon":
            assert ">>> " in body, f"{page.name}:{line}: a pycon block without an example"
            continue
        where = f"{page.name}:{line}: a ```{language} block"
        assert language.startswith("{") or language in NOT_PYTHON, f"{where}: use ```pycon with >>> prompts"
        assert ">>>" not in body and not re.search(r"^(import|from) \w", body, re.M), f"{where} holds Python"


def test_api_reference_names_every_public_name() -> None:
    api = (DOCS / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\.\. (?:auto\w+|py:data):: heifkit\.(\w+)", api, re.M))
    missing = set(heifkit.__all__) - documented - {"options"}
    assert not missing, f"not in docs/api.md: {sorted(missing)}"
    assert ".. automodule:: heifkit.options" in api


def test_every_option_has_a_docstring() -> None:
    """autodoc lists an option only when it has a docstring (the string after its assignment)."""
    tree = ast.parse(Path(heifkit.options.__file__).read_text(encoding="utf-8"))
    body = tree.body
    options = {
        node.target.id: index
        for index, node in enumerate(body)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id.isupper()
    }
    undocumented = [
        name
        for name, index in options.items()
        if not (
            index + 1 < len(body)
            and isinstance(body[index + 1], ast.Expr)
            and isinstance(body[index + 1].value, ast.Constant)
        )
    ]
    assert options and not undocumented, undocumented


def test_docstring_examples_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Examples in heifkit's docstrings, if any, run too (from the repository root)."""
    monkeypatch.chdir(REPO)
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=mddoctest.OPTIONFLAGS)
    for module in pkgutil.walk_packages(heifkit.__path__, "heifkit."):
        if module.name in ("heifkit._native.build", "heifkit._native._binding", "heifkit.HeifImagePlugin"):
            continue  # the cffi builder runs at import, the extension has no docstrings, the plugin registers
        for test in finder.find(importlib.import_module(module.name)):
            runner.run(test)
    assert runner.failures == 0
