"""Files libheif refuses, and fuzzed/broken files: heifkit raises the right exception and never crashes.

Each file runs in its own child process (memory capped at 4 GiB with RLIMIT_AS, 60 s timeout) that
opens it with heifkit and decodes every top-level image, then does the same with pillow_heif. The child
must exit normally: no signal, no hang. heifkit must raise a ``heifkit.HeifError`` that is also an
instance of the built-in class pillow_heif raises for the same file (contract §3.8), at the step plain
libheif of the same version fails (open, or the same image's decode; the ctypes oracle), with the code and
message libheif gives there. That comparison uses libheif's aom
for AV1, like the oracle; the same file is also read with the default decoders, which must refuse it
the same way or, for a damaged frame dav1d conceals, decode it.

Two kinds of files cannot be compared that way, and there heifkit must follow the documented mapping
of DESIGN §5 / ``heifkit.errors`` from libheif's error code instead, with that code confirmed by the
ctypes oracle (plain libheif, no heifkit):

* AVIF files: pillow_heif's wheel has no AV1 decoder, so it fails every AV1 decode with a RuntimeError
  about a missing plugin, while heifkit reaches libheif's real error (security limit, corrupt frame...);
* files pillow_heif opens but heifkit refuses: for ``unci`` (uncompressed) items libheif 1.23.6 cannot
  create an image handle; pillow_heif silently skips such images and returns an empty HeifFile, while
  heifkit reports libheif's "Unsupported feature" error.

The comparison child keeps dav1d out (``HEIFKIT_DAV1D=0``): heifkit registers dav1d into the libheif
the oracle shares. A second child reads the file with the default decoders (dav1d for AV1 when found).
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

pytestmark = pytest.mark.slow  # a child process per refused file

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
if len(sys.argv) > 3:  # the run with the default decoders: heifkit only
    sys.exit(0)

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
    result.update(code=exc.code, subcode=exc.subcode, message=exc.message)
print(json.dumps(result), flush=True)
"""


def run_child(name: str) -> dict[str, Any]:
    """The comparison run (AV1 with aom, as the oracle in the same process decodes), then heifkit as installed."""
    args = [str(CORPUS / name), ",".join(BUILTIN_NAMES)]
    out: dict[str, Any] = {}
    for key, extra, env in (("", [], subproc.child_env(HEIFKIT_DAV1D="0")), ("default ", ["default"], None)):
        try:
            proc = subproc.run_python(CHILD, args + extra, timeout=TIMEOUT, env=env, limit=True)
        except subprocess.TimeoutExpired as exc:
            return {"error": f"{key}child hung: no exit within {TIMEOUT} s", "stdout": str(exc.stdout)}
        if proc.returncode != 0:
            return {"error": f"{key}child died (rc {proc.returncode}): {proc.stderr[-2000:]}"}
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                out[key.replace(" ", "_") + record["lib"]] = record
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


GENERIC = {"", "Unspecified", "Unknown error"}
"""libheif's words for "no more detail": a message made only of its category and these says nothing."""


def assert_says_what_is_wrong(name: str, record: dict[str, Any]) -> None:
    """libheif's messages are "category: kind[: detail]" ("Invalid input: Unspecified: File size too small."):
    past the category, something must name the problem; a security limit's names the limit too."""
    message = record["message"]
    parts = [part.strip() for part in message.split(": ")]
    assert len(parts) >= 2 and any(part not in GENERIC for part in parts[1:]), (
        f"{name}: the message does not say what is wrong: {message!r}"
    )
    if record["cls"] == "SecurityLimitError":
        assert "[security limit" in message and "disable_security_limits" in message, message


def _no_av1_decoder(record: dict[str, Any]) -> bool:
    return not record["ok"] and "has not been built in: AV1" in record["message"]


def check_default_decoders(name: str, default: dict[str, Any], aom: dict[str, Any]) -> None:
    """With dav1d in place of aom, a refused file is refused the same way, or only its frames decode.

    dav1d conceals some damage that aom reports as a corrupt frame (libavif's poc_b_506387278 decodes
    to a flat picture). Whether a file's container is refused cannot depend on the AV1 decoder, so a
    file aom refuses at open must be refused at open; one refused at a decode may decode.
    """
    if default["ok"]:
        assert aom["ok"] or aom["stage"].startswith("decode["), (
            f"{name}: refused at {aom['stage']} with aom ({aom['message']!r}) but opened with the default decoders"
        )
        return
    assert default["heif_error"] and default["message"], f"{name}: default decoders: {default}"
    assert_says_what_is_wrong(name, default)
    if not aom["ok"] and aom["stage"] == "open":
        assert default == aom, f"{name}: refused at open differently: {default} with dav1d, {aom} with aom"


@pytest.mark.parametrize("name", FILES, ids=FILES)
def test_refused_file(name: str, children: dict[str, Future[dict[str, Any]]]) -> None:
    result = children[name].result()
    assert "error" not in result, f"{name}: {result['error']}"
    ours, theirs, libheif = result["heifkit"], result["pillow_heif"], result["oracle"]
    check_default_decoders(name, result["default_heifkit"], ours)
    assert not ours["ok"], f"{name}: heifkit decoded all {ours['images']} images of a file libheif refuses"
    got = (
        f"heifkit raised {ours['cls']} at {ours['stage']}: {ours['message']!r} (code {ours['code']}/{ours['subcode']})"
    )
    assert ours["heif_error"], f"{name}: not a HeifError: {got}"
    assert ours["cls"] != "InternalError", f"{name}: not a typed error: {got}"
    assert_says_what_is_wrong(name, ours)

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

    # What pillow_heif promises is the class: an ``except`` written for pillow_heif catches heifkit's error. The
    # step at which a file is refused, and libheif's words, depend on the libheif inside pillow_heif's wheel
    # (pillow_heif 1.9's libheif 1.23.7 refuses bad/pheif_corrupted.hif at decode, 1.23.6 at open): those
    # are compared with plain libheif of the version heifkit loads, through the ctypes oracle.
    want = theirs["builtin"]
    assert want in BUILTIN_NAMES and hasattr(builtins, want)
    assert want in ours["isinstance"], f"{name}: pillow_heif raised {want} ({theirs['message']!r}); {got}"
    assert libheif["code"] is not None, f"{name}: plain libheif does not fail at {ours['stage']}; {got}"
    assert (ours["code"], ours["subcode"]) == (libheif["code"], libheif["subcode"]), (
        f"{name}: plain libheif reports {libheif['message']!r} (code {libheif['code']}/{libheif['subcode']}); {got}"
    )
    # libheif's message, unchanged; a security limit's is followed by which limit it is and how to raise it
    assert ours["message"].startswith(libheif["message"].strip()), f"{name}: libheif's {libheif['message']!r}; {got}"
