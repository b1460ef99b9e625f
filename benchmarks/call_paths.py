"""The modules a Pillow user's stream and a save's ``quality`` pass through, counted (for docs/architecture.md).

Run: ``.venv/bin/python benchmarks/call_paths.py [--list]``

- *stream*: ``Image.open(stream)`` then ``load()`` of an HEIC with the plugin registered: every call from one
  heifkit module into another (a run of the same call, as a loop makes, counts once), how many distinct
  (caller, callee) pairs, and how often the most entered module is entered.
- *quality*: ``im.save(out, format="HEIF", quality=37)``, following only the calls whose arguments hold the
  value (directly, in a mapping, as a field of a dataclass; and the plugin's save hook, which finds it in
  Pillow's ``im.encoderinfo``): the same counts over that chain.

Counts, not times: they do not depend on the machine.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

import heifkit

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "corpus" / "pheif_pug.heic"
QUALITY = 37


def _module(frame: Any) -> str | None:
    name = frame.f_globals.get("__name__", "")
    return name if name.startswith("heifkit") else None


def _holds(value: Any, depth: int = 0) -> bool:
    if value is QUALITY or (type(value) is int and value == QUALITY):
        return True
    if depth > 1:
        return False
    if isinstance(value, dict):
        return any(_holds(v, depth + 1) for v in list(value.values())[:64])
    fields = getattr(value, "__dataclass_fields__", None)
    if fields is not None:
        return any(_holds(getattr(value, f, None), depth + 1) for f in fields)
    return False


def _holds_encoderinfo(value: Any) -> bool:
    """A Pillow image whose ``encoderinfo`` (what Pillow hands the save hook) holds the value."""
    return isinstance(getattr(value, "encoderinfo", None), dict) and _holds(value.encoderinfo, 1)


def _trace(run: Callable[[], None], follow_value: bool) -> list[tuple[str, str, bool]]:
    """The moves ``run`` makes between heifkit modules: (from, to, whether it is a return to a caller)."""
    moves: list[tuple[str, str, bool]] = []
    stack: list[str] = []  # the followed frames' modules ("" for the rest)

    def current() -> str | None:
        return next((m for m in reversed(stack) if m), None)

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event not in ("call", "return"):
            return
        before = current()
        if event == "return":
            if stack:
                stack.pop()
        else:
            module = _module(frame)
            if module is not None and follow_value:
                code = frame.f_code
                count = code.co_argcount + code.co_kwonlyargcount
                args = [frame.f_locals.get(n) for n in code.co_varnames[:count]]
                if code.co_flags & 0x08:  # **kwargs
                    args.append(frame.f_locals.get(code.co_varnames[count + (1 if code.co_flags & 0x04 else 0)]))
                entry = module.endswith(".plugin") and any(_holds_encoderinfo(a) for a in args)  # Pillow's hook
                if not entry and not any(_holds(a) for a in args):
                    module = None
            stack.append(module or "")
        after = current()
        if before and after and before != after:
            moves.append((before, after, event == "return"))

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return moves


def stream_path() -> list[tuple[str, str, bool]]:
    data = SAMPLE.read_bytes()

    def run() -> None:
        with Image.open(io.BytesIO(data)) as im:
            im.load()

    return _trace(run, follow_value=False)


def quality_path() -> list[tuple[str, str, bool]]:
    im = Image.new("RGB", (64, 48), (200, 30, 90))

    def run() -> None:
        im.save(io.BytesIO(), format="HEIF", quality=QUALITY)

    return _trace(run, follow_value=True)


def _report(title: str, moves: list[tuple[str, str, bool]], listing: bool) -> None:
    calls = [(a, b) for a, b, back in moves if not back]
    runs = [c for i, c in enumerate(calls) if i == 0 or c != calls[i - 1]]  # a loop calling one helper: once
    distinct = list(dict.fromkeys(calls))
    modules = {m for call in distinct for m in call}
    entered: dict[str, int] = {}
    for _, to in runs:
        entered[to] = entered.get(to, 0) + 1
    busiest = max(entered.items(), key=lambda kv: kv[1]) if entered else ("-", 0)
    print(
        f"{title}: {len(modules)} modules, {len(runs)} calls between modules ({len(distinct)} distinct);"
        f" most entered: {busiest[0]} ({busiest[1]} times)"
    )
    if listing:
        for a, b in distinct:
            print(f"    {a} -> {b}")


def main() -> None:
    heifkit.register_heif_opener()
    listing = "--list" in sys.argv
    _report("stream opened with Image.open + load", stream_path(), listing)
    _report(f"save(quality={QUALITY})", quality_path(), listing)


if __name__ == "__main__":
    main()
