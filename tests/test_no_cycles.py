"""No reference cycles on the open, decode, save and plugin paths: what a path made is freed when its last
reference goes, not when the cycle collector next runs (a cycle holding a context keeps its whole file in memory:
6 MB for pug.heic). Each path runs with the collector off; a collection afterwards must find nothing of ours."""

from __future__ import annotations

import gc
import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PIL import Image

import heifkit
from conftest import CORPUS, PUG, ZPUG

GAIN_MAP_AVIF = CORPUS / "libavif_colors_hdr_p3.avif"  # 200x200 with a gain map: copied on re-save
FAST = {"quality": 10, "speed": 10}


def _ours(obj: Any) -> bool:
    module = type(obj).__module__ or ""
    return module.startswith(("heifkit", "_cffi_backend")) or (isinstance(obj, (bytes, bytearray)) and len(obj) > 65536)


def cycles_left(path: Callable[[], object]) -> list[str]:
    """What of ours ``path`` left in reference cycles (run once before, so that caches and imports are made)."""
    path()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds unreachable goes to gc.garbage instead of freed
    try:
        path()
        gc.collect()
        found = [f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage if _ours(o)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    return found


@pytest.fixture
def heif_and_avif_plugins() -> Iterator[None]:
    saved = {name: dict(getattr(Image, name)) for name in ("OPEN", "SAVE", "SAVE_ALL", "EXTENSION", "MIME")}
    ids = list(Image.ID)
    heifkit.register_heif_opener()
    heifkit.register_avif_opener()
    yield
    for name, value in saved.items():
        getattr(Image, name).clear()
        getattr(Image, name).update(value)
    Image.ID[:] = ids


def _plugin_resave(path: Any, fmt: str) -> None:
    with Image.open(path) as im:
        im.save(io.BytesIO(), fmt, **FAST)


PATHS: dict[str, Callable[[], object]] = {
    "open": lambda: heifkit.open_heif(ZPUG).info,
    "decode": lambda: [image.data for image in heifkit.open_heif(ZPUG)],
    "to_pillow": lambda: heifkit.open_heif(ZPUG).to_pillow(),
    "thumbnail": lambda: heifkit.open_heif(ZPUG).get_thumbnail(0).data,
    "region": lambda: heifkit.open_heif(CORPUS / "pheif_RGB_8__29x100.heif").crop((2, 2, 20, 50)).data,
    "stream": lambda: heifkit.open_heif(io.BytesIO(ZPUG.read_bytes())).data,
    "sequence": lambda: [frame.data for frame in heifkit.open_sequence(CORPUS / "pillow_star.avifs")],
    "save": lambda: heifkit.open_heif(ZPUG).save(io.BytesIO(), **FAST),
    "save attached": lambda: heifkit.open_heif(GAIN_MAP_AVIF).save(io.BytesIO(), **FAST),
    "from_pillow": lambda: heifkit.from_pillow(Image.new("RGBA", (40, 30))).save(io.BytesIO(), **FAST),
    "save sequence": lambda: heifkit.save_sequence([Image.new("RGB", (16, 16))] * 2, io.BytesIO(), 10, format="AVIF"),
    "plugin open": lambda: Image.open(ZPUG).load(),
    "plugin frames": lambda: [im.load() for im in [Image.open(ZPUG)] for i in range(3) if not im.seek(i)],
    "plugin AVIF": lambda: Image.open(CORPUS / "libheif_example.avif").load(),
    "plugin save HEIF": lambda: _plugin_resave(ZPUG, "HEIF"),
    "plugin save attached": lambda: _plugin_resave(GAIN_MAP_AVIF, "AVIF"),
    "plugin animation": lambda: Image.open(CORPUS / "pillow_star.avifs").save(io.BytesIO(), "AVIF", save_all=True),
}


@pytest.mark.usefixtures("heif_and_avif_plugins")
@pytest.mark.parametrize("name", PATHS)
def test_no_reference_cycles(name: str) -> None:
    assert cycles_left(PATHS[name]) == []


@pytest.mark.slow  # a 12 MP grid with a depth image and a gain map, re-saved
@pytest.mark.usefixtures("heif_and_avif_plugins")
def test_no_reference_cycles_saving_pug() -> None:
    assert cycles_left(lambda: heifkit.open_heif(PUG).save(io.BytesIO(), **FAST)) == []


def test_the_check_finds_a_cycle() -> None:
    def path() -> None:
        heif = heifkit.open_heif(ZPUG)
        heif.info["self"] = heif  # a cycle through a HeifFile

    assert "heifkit.heif.HeifFile" in cycles_left(path)
