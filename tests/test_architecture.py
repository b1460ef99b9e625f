"""The package's structure (docs/architecture.md): the top level is the public API and everything internal lives
in a sub-package; data flows one way (no import cycle between modules, imports inside functions included, and
sub-packages in layers); the writer never knows the image model; every libheif function declared is called;
the C helpers stay in their own files."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import heifkit

PACKAGE = Path(heifkit.__file__).resolve().parent
SOURCES = Path(__file__).resolve().parents[1] / "src" / "heifkit"
ROOT = SOURCES if SOURCES.is_dir() else PACKAGE  # the checkout's sources; the installed copy otherwise

PUBLIC = {
    "__init__", "__main__", "_version", "HeifImagePlugin", "plugin", "heif", "image", "sequence", "gainmap",
    "options", "errors", "constants", "limits", "codecs", "batch", "cli", "fileinfo",
}  # fmt: skip
"""The modules users import (pillow_heif's names included), which stay where they are."""

BOUNDARY = {"_pillow_avif"}
"""Private modules at the top level: the Pillow plugin's AVIF save hook, beside ``plugin`` (an API boundary)."""

BASE = {"errors", "constants", "limits", "codecs", "options", "_version"}
"""Top-level modules every layer may use: the exceptions, enums, security limits, codec lookup and defaults."""

LAYERS = [{"_native", "_container"}, {"_info"}, {"_read"}, {"_decode", "_write"}, {"top"}, {"_convert"}, {"front"}]
"""Sub-packages from the bottom up; a module imports from its own layer or below (``top``: the public API;
``front``: the command line and bulk conversion, which run conversions)."""

FRONT = {"batch", "cli", "__main__"}


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    """Every module by its dotted name under ``heifkit`` ("image", "_read.entries"; a package by its own name)."""
    return {_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _package_of(name: str, path: Path) -> list[str]:
    parts = name.split(".") if name else []
    return parts if path.name == "__init__.py" else parts[:-1]


def _imports(name: str, path: Path, names: set[str]) -> set[str]:
    """heifkit modules ``path`` imports anywhere (top level, functions, ``TYPE_CHECKING`` blocks)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(name, path)
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == "heifkit" or node.module.startswith("heifkit.")):
                module = node.module.removeprefix("heifkit").removeprefix(".")
            else:
                continue
            if module in names:
                found.add(module)
            found.update(f"{module}.{a.name}".lstrip(".") for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("heifkit.") for a in node.names if a.name.startswith("heifkit."))
    return (found & names) - {name, ""}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    names = set(modules)
    return {name: _imports(name, path, names) for name, path in modules.items() if name}


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


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for child in graph.get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def _package(module: str) -> str:
    """The sub-package a module is in ("_read"), or "top" / "front" for the top level."""
    if "." in module or (ROOT / module).is_dir():
        return module.split(".")[0]
    return "front" if module in FRONT else "top"


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_walk_sees_every_kind_of_import() -> None:
    graph = _graph()
    assert {"_native.libheif", "_info.modes"} <= graph["_read.entries"]  # from ..x.y import, from ..x import y
    assert "_decode.layered_av1" in graph["_decode.pixels"]  # from . import y
    assert "options" in graph["_read.entries"]  # from .. import options


def test_no_import_cycles() -> None:
    graph = _graph()
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph) or [])}"


def test_the_top_level_is_the_public_api() -> None:
    top = {p.stem for p in ROOT.glob("*.py")}
    assert top == PUBLIC | BOUNDARY and len(top) <= 22
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages == set().union(*LAYERS) - {"top", "front"}
    assert all(p.name.startswith("_") for p in ROOT.glob("*/__init__.py") for p in [p.parent])


def test_sub_packages_import_one_way() -> None:
    """A module imports modules of its own layer or below, and of the public API only the base modules."""
    level = {package: i for i, layer in enumerate(LAYERS) for package in layer}
    wrong = []
    for module, imported in _graph().items():
        here = level[_package(module)]
        for other in imported:
            package = _package(other)
            if package == "top" and (other in BASE or here >= level["top"]):
                continue
            if level[package] > here:
                wrong.append(f"{module} -> {other}")
    assert wrong == []


def test_the_writer_never_knows_the_image_model() -> None:
    graph = _graph()
    model = {"image", "heif", "plugin", "sequence", "gainmap", "_read.entries"}
    writer = [m for m in graph if m.startswith("_write.")]
    assert len(writer) >= 5
    for module in writer:
        assert not _reaches(graph, module) & model, module
        assert not any(m.startswith("_decode.") for m in _reaches(graph, module)), module
    # the image model reaches the writer only through HeifFile.save (heif), the sequence API, and a lossless
    # edit (HeifImage.transpose, crop(lossless=True)), which writes the image as stored and reads it back
    edits = {"_write.stored", "_write.geometry", "_write.settings", "_write.params"}
    assert {m for m in _reaches(graph, "image") if m.startswith("_write.")} <= edits
    assert not any(m.startswith("_write.") for m in _reaches(graph, "_read.entries") | _reaches(graph, "_read.tracks"))


def test_declared_libheif_functions_are_all_called() -> None:
    from heifkit._native import decls as _decls

    modules = _modules()
    source = "\n".join(p.read_text() for n, p in modules.items() if n not in ("_native.decls", "_native.build"))
    helpers = "\n".join(p.read_text() for p in sorted((ROOT / "_native").glob("*.c")))
    declared = [re.search(r"\b(heif_\w+)\s*\(", proto).group(1) for proto in _decls.FUNCTIONS]  # type: ignore[union-attr]
    unused = [name for name in declared if name not in source and name not in helpers]
    assert unused == []


def test_c_helpers_live_in_their_own_files() -> None:
    build = (SOURCES / "_native" / "build.py").read_text()  # read, not imported: importing it runs cffi
    (sources,) = re.findall(r"^C_SOURCES = (\[.*\])$", build, re.M)
    assert all((SOURCES / "_native" / name).is_file() for name in ast.literal_eval(sources))
    assert "hk_copy_plane" not in build and "#include <dlfcn.h>" not in build  # no C in the builder


def test_only_the_settings_read_options_in_the_writer() -> None:
    """``_write.settings`` resolves every default when the API builds a save's settings; the rest of the writer
    reads those settings, never ``heifkit.options``."""
    graph = _graph()
    readers = sorted(m for m, imported in graph.items() if m.startswith("_write.") and "options" in imported)
    assert readers == ["_write.settings"]
    for path in sorted((ROOT / "_write").glob("*.py")):
        if path.stem != "settings":
            assert "options." not in path.read_text(), path.name


def test_only_the_native_package_loads_libraries() -> None:
    """libheif, dav1d and the compiled extension are loaded in ``_native`` only (by absolute path, RTLD_LOCAL):
    no other module imports ctypes or the extension, or opens a library."""
    wrong = []
    for name, path in _modules().items():
        if name.startswith("_native") or not name:
            continue
        text = path.read_text()
        if re.search(r"\bimport ctypes\b|\bfrom ctypes\b|\bdlopen\b|\b_binding\b|\bCDLL\b", text):
            wrong.append(name)
    assert wrong == []


_STRUCT_CALLS = {"pack", "pack_into", "unpack", "unpack_from", "iter_unpack", "calcsize", "Struct"}
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _module_nodes(tree: ast.AST) -> list[ast.AST]:
    """The nodes of a module outside its functions."""
    nodes, todo = [], list(ast.iter_child_nodes(tree))
    while todo:
        node = todo.pop()
        nodes.append(node)
        if not isinstance(node, _FUNCTIONS):
            todo.extend(ast.iter_child_nodes(node))
    return nodes


def _box_header_reads(root: Path) -> list[str]:
    """Where a module other than ``_container/boxes.py`` handles an ISOBMFF box header itself: a struct format
    that starts with the 32-bit size and the 4-byte type (``">I4s"``), or a 64-bit ``">Q"`` read in a function
    that compares something with 1 (the largesize rule)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        name = path.relative_to(root).as_posix()
        if name == "_container/boxes.py":
            continue
        tree = ast.parse(path.read_text())
        functions = [list(ast.walk(n)) for n in ast.walk(tree) if isinstance(n, _FUNCTIONS)]  # nested ones included
        for nodes in [_module_nodes(tree), *functions]:
            formats = []
            for node in nodes:
                func = node.func if isinstance(node, ast.Call) else None
                called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
                first = node.args[0] if isinstance(node, ast.Call) and node.args else None
                if called in _STRUCT_CALLS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                    formats.append((first.value.replace(" ", ""), node.lineno))
            compares_with_1 = any(
                isinstance(node, ast.Compare)
                and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops)
                and any(isinstance(c, ast.Constant) and c.value == 1 for c in [node.left, *node.comparators])
                for node in nodes
            )
            for fmt, line in formats:
                if re.match(r"[>!][IL]4s", fmt) or (compares_with_1 and re.match(r"[>!]Q", fmt)):
                    found.append(f"{name}:{line}: {fmt!r}")
    return sorted(set(found))


def test_only_the_box_module_reads_box_headers() -> None:
    """``_container/boxes.py`` is the one reader (and writer) of box headers: the other modules that read boxes
    walk them through it, so a damaged size is handled in one place."""
    assert _box_header_reads(ROOT) == []
    graph = _graph()
    for module in ("_container.item_boxes", "_container.sample_tables", "_container.layout", "_decode.oversized"):
        assert "_container.boxes" in graph[module], module


def test_no_module_imports_another_modules_private_names() -> None:
    """What one module takes from another is that module's own interface: no ``from .x import _name``."""
    wrong = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                wrong += [
                    f"{name}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert wrong == []
