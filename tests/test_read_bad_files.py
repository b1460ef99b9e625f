"""Files libheif refuses, and fuzzed/broken files: heifkit raises the right exception and never crashes.

Each file runs in its own child process (memory capped at 4 GiB with RLIMIT_AS, 60 s timeout) that
opens it with heifkit and decodes every top-level image, then does the same with pillow_heif. The child
must exit normally: no signal, no hang. heifkit must raise a ``heifkit.HeifError`` that is also an
instance of the built-in class pillow_heif raises for the same file (contract §3.8), at the same step
(open or the same image's decode), with libheif's message unchanged.

Two kinds of files cannot be compared that way, and there heifkit must follow the documented mapping
of DESIGN §5 / ``heifkit.errors`` from libheif's error code instead, with that code confirmed by the
ctypes oracle (plain libheif, no heifkit):

* AVIF files: pillow_heif's wheel has no AV1 decoder, so it fails every AV1 decode with a RuntimeError
  about a missing plugin, while heifkit reaches libheif's real error (security limit, corrupt frame...);
* files pillow_heif opens but heifkit refuses: for ``unci`` (uncompressed) items libheif 1.23.6 cannot
  create an image handle; pillow_heif silently skips such images and returns an empty HeifFile, while
  heifkit reports libheif's "Unsupported feature" error.

The children run two at a time in the background, started by a module fixture, one pytest item each.
"""

from __future__ import annotations

import builtins
import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

import subproc
from conftest import CORPUS, refused_files

FILES = refused_files()
WORKERS = 2
TIMEOUT = 60

BUILTIN_NAMES = (
    "ValueError",
    "EOFError",
    "SyntaxError",
    "RuntimeError",
    "NotImplementedError",
    "MemoryError",
    "OSError",
    "TypeError",
    "KeyError",
)

CHILD = r"""
import builtins, json, sys
path, NAMES = sys.argv[1], sys.argv[2].split(",")

def describe(lib, stage, exc, base):
    return {
        "lib": lib, "ok": False, "stage": stage, "cls": type(exc).__name__,
        "builtin": next(c.__name__ for c in type(exc).__mro__ if c.__module__ == "builtins"),
        "isinstance": [n for n in NAMES if isinstance(exc, getattr(builtins, n))],
        "heif_error": base is not None and isinstance(exc, base),
        "message": str(exc), "code": getattr(exc, "code", None), "subcode": getattr(exc, "subcode", None),
    }

def attempt(lib, module, base=None):
    try:
        f = module.open_heif(path)
    except Exception as exc:
        return describe(lib, "open", exc, base)
    for i in range(len(f)):
        try:
            f[i].data
        except Exception as exc:
            return describe(lib, f"decode[{i}]", exc, base)
    return {"lib": lib, "ok": True, "images": len(f)}

import heifkit
ours = attempt("heifkit", heifkit, heifkit.HeifError)
print(json.dumps(ours), flush=True)

import pillow_heif
print(json.dumps(attempt("pillow_heif", pillow_heif)), flush=True)

# libheif's own error for the step heifkit failed at, through the ctypes oracle.
import oracle
result = {"lib": "oracle", "code": None, "subcode": None, "message": None}
try:
    if ours.get("stage", "open") == "open":
        count, _ = oracle.structure(path)
        for i in range(count):
            oracle.properties(path, i)
    else:
        oracle.decode_rgb(path, int(ours["stage"][len("decode["):-1]))
except oracle.OracleError as exc:
    result.update(code=exc.code, subcode=exc.subcode, message=str(exc))
print(json.dumps(result), flush=True)
"""


def run_child(name: str) -> dict[str, Any]:
    try:
        proc = subproc.run_python(CHILD, [str(CORPUS / name), ",".join(BUILTIN_NAMES)], timeout=TIMEOUT, limit=True)
    except subprocess.TimeoutExpired as exc:
        return {"error": f"child hung: no exit within {TIMEOUT} s", "stdout": str(exc.stdout)}
    out: dict[str, Any] = {"returncode": proc.returncode, "stderr": proc.stderr[-2000:]}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            out[record["lib"]] = record
    return out


@pytest.fixture(scope="module")
def children(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[dict[str, Any]]]]:
    """Start the child of every selected file at once; each test waits for its own."""
    module = request.module.__name__
    wanted = [
        item.callspec.params["name"]
        for item in request.session.items
        if item.module is not None and item.module.__name__ == module and hasattr(item, "callspec")
    ]
    with ThreadPoolExecutor(WORKERS) as pool:
        yield {name: pool.submit(run_child, name) for name in dict.fromkeys(wanted)}
        pool.shutdown(cancel_futures=True)


def documented_class(code: int, subcode: int) -> tuple[str, tuple[type[BaseException], ...]]:
    """DESIGN §5 / heifkit.errors: the heifkit class and built-ins for a libheif (code, subcode)."""
    if subcode == 1000:  # heif_suberror_Security_limit_exceeded
        return "SecurityLimitError", (ValueError,)
    if subcode == 100:  # heif_suberror_End_of_data
        return "TruncatedError", (EOFError, ValueError)
    if code in (2, 5):  # Invalid_input, Usage_error
        return "InvalidInputError", (ValueError,)
    if code in (3, 4, 10, 11):  # Unsupported_filetype/_feature, Color_profile_does_not_exist, Plugin_loading
        return "UnsupportedError", (SyntaxError, NotImplementedError)
    if code == 7:  # Decoder_plugin_error
        return "DecoderError", (ValueError,)
    if code in (8, 9):  # Encoder_plugin_error, Encoding_error
        return "EncoderError", (RuntimeError,)
    return "InternalError", (RuntimeError,)


def _no_av1_decoder(record: dict[str, Any]) -> bool:
    return not record["ok"] and "has not been built in: AV1" in record["message"]


@pytest.mark.parametrize("name", FILES, ids=FILES)
def test_refused_file(name: str, children: dict[str, Future[dict[str, Any]]]) -> None:
    result = children[name].result()
    assert "error" not in result, f"{name}: {result}"
    assert result["returncode"] == 0, f"{name}: child died (rc {result['returncode']}): {result['stderr']}"
    ours, theirs, libheif = result["heifkit"], result["pillow_heif"], result["oracle"]
    assert not ours["ok"], f"{name}: heifkit decoded all {ours['images']} images of a file libheif refuses"
    got = (
        f"heifkit raised {ours['cls']} at {ours['stage']}: {ours['message']!r} (code {ours['code']}/{ours['subcode']})"
    )
    assert ours["heif_error"], f"{name}: not a HeifError: {got}"
    assert ours["message"], f"{name}: empty message: {got}"

    if _no_av1_decoder(theirs) or theirs["ok"]:
        why = "pillow_heif has no AV1 decoder" if not theirs["ok"] else "pillow_heif opens it (0 images)"
        cls_name, bases = documented_class(ours["code"], ours["subcode"])
        assert ours["cls"] == cls_name, f"{name} ({why}): expected {cls_name} by DESIGN §5; {got}"
        missing = [b.__name__ for b in bases if b.__name__ not in ours["isinstance"]]
        assert not missing, f"{name} ({why}): {ours['cls']} is not a {missing}; {got}"
        assert (ours["code"], ours["subcode"]) == (libheif["code"], libheif["subcode"]), (
            f"{name} ({why}): libheif (oracle) reports {libheif['message']!r}; {got}"
        )
        return

    want = theirs["builtin"]
    assert want in BUILTIN_NAMES and hasattr(builtins, want)
    assert want in ours["isinstance"], f"{name}: pillow_heif raised {want} ({theirs['message']!r}); {got}"
    assert ours["stage"] == theirs["stage"], f"{name}: pillow_heif failed at {theirs['stage']}; {got}"
    assert ours["message"] == theirs["message"], f"{name}: pillow_heif's message {theirs['message']!r}; {got}"
