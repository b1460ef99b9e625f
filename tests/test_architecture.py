"""The package's structure: data flows one way (no import cycles, imports inside functions included), the
writer never knows the image model, no module grows past its job, every libheif function declared is
called, and the C helpers stay in their own file."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import heifkit

PACKAGE = Path(heifkit.__file__).resolve().parent
SOURCES = Path(__file__).resolve().parents[1] / "src" / "heifkit"
ROOT = SOURCES if SOURCES.is_dir() else PACKAGE  # the checkout's sources; the installed copy otherwise


def _modules() -> dict[str, Path]:
    return {p.stem: p for p in sorted(ROOT.glob("*.py"))}


def _imports(path: Path) -> set[str]:
    """Sibling modules ``path`` imports anywhere (top level, functions, ``TYPE_CHECKING`` blocks)."""
    names = set(_modules())
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("heifkit."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("heifkit."))
    return found & names


def _graph() -> dict[str, set[str]]:
    return {name: _imports(path) - {name} for name, path in _modules().items() if name != "__init__"}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``graph`` (as a path of module names), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == 1:
                return path[path.index(child) :] + [child]
            if child not in state and (found := visit(child)):
                return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycles() -> None:
    graph = _graph()
    assert "image" in graph and "_write" in graph  # the walk sees the package
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph) or [])}"


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for child in graph.get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def test_the_writer_never_knows_the_image_model() -> None:
    graph = _graph()
    assert not _reaches(graph, "_write") & {"image", "heif", "plugin", "_read", "decode"}
    # the image model reaches the writer only through HeifFile.save (heif.py)
    assert "_write" not in _reaches(graph, "image")
    assert "_write" not in _reaches(graph, "_read")
    # the sequence writer neither (frames in, bytes out), and reading a track never reaches a writer
    assert not _reaches(graph, "_write_sequence") & {"image", "heif", "plugin", "_read", "decode", "sequence"}
    assert not ({"_write", "_write_sequence"} & (_reaches(graph, "_track") | _reaches(graph, "_sample_tables")))


def test_modules_stay_small() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    assert {name: n for name, n in sizes.items() if n > 520} == {}


def test_declared_libheif_functions_are_all_called() -> None:
    from heifkit import _decls

    source = "\n".join(p.read_text() for n, p in _modules().items() if n not in ("_decls", "_build"))
    helpers = (ROOT / "_helpers.c").read_text() if (ROOT / "_helpers.c").is_file() else ""
    declared = [re.search(r"\b(heif_\w+)\s*\(", proto).group(1) for proto in _decls.FUNCTIONS]  # type: ignore[union-attr]
    unused = [name for name in declared if name not in source and name not in helpers]
    assert unused == []


def test_c_helpers_live_in_their_own_file() -> None:
    assert (SOURCES / "_helpers.c").is_file()
    build = (SOURCES / "_build.py").read_text()
    assert "_helpers.c" in build
    assert "hk_copy_plane" not in build and "#include <dlfcn.h>" not in build  # no C in the builder
