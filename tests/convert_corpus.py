"""Helpers for the command line and bulk conversion tests: a folder of corpus files (HEIC with irot + ICC +
EXIF orientation, AVIF with irot/imir, multi-image, 10-bit, and a JPEG whose EXIF orientation says how to
turn it upright), upright reference images, picture comparisons, and a JSON Schema validator for the subset
of JSON Schema that ``heifkit info --json``'s schema uses."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

import heifkit
from conftest import ARROW, CORPUS, ZPUG

FILES = {
    "arrow.heic": ARROW,  # 3024x4032 grid, irot 270, EXIF orientation 6, Display P3 ICC, thumbnail 240x320
    "zpug.heic": ZPUG,  # 3 images, the second (grey) primary
    "example.avif": CORPUS / "libheif_example.avif",  # 800x533 AV1, NCLX
    "rot1mir0.avif": CORPUS / "pillow_rot1mir0.avif",  # irot 90 + imir
    "rgb10.heif": CORPUS / "pheif_RGB_10__128x128.heif",  # 10-bit colour
    "grey10.heif": CORPUS / "pheif_L_10__128x128.heif",  # 10-bit grey
}
QUADRANTS = [(240, 40, 40), (40, 200, 40), (40, 40, 200), (240, 240, 240)]  # top-left, top-right, bottom-left, -right
JPEG_SIZE = (120, 80)  # upright


def upright_quadrants() -> Image.Image:
    """A 120x80 picture of four coloured quadrants: any rotation or mirror changes which colour is where."""
    im = Image.new("RGB", JPEG_SIZE)
    w, h = JPEG_SIZE
    for i, colour in enumerate(QUADRANTS):
        x, y = (i % 2) * w // 2, (i // 2) * h // 2
        im.paste(colour, (x, y, x + w // 2, y + h // 2))
    return im


def display_p3() -> bytes:
    """The Display P3 ICC profile of the arrow photo."""
    return bytes(heifkit.open_heif(ARROW).info["icc_profile"])


def rotated_jpeg(path: Path) -> None:
    """A JPEG stored on its side, with EXIF orientation 6 (turn 90 degrees clockwise to show), a camera, a date,
    XMP and an ICC profile: viewers that follow EXIF show :func:`upright_quadrants`."""
    stored = upright_quadrants().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[271], exif[272], exif[274] = "Maker", "Camera 1", 6
    exif.get_ifd(0x8769)[36867] = "2024:05:06 07:08:09"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    xmp += b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
    stored.save(path, "JPEG", quality=95, exif=exif, icc_profile=display_p3(), xmp=xmp)
    with Image.open(path) as check:  # what a viewer shows is upright
        assert quadrants(ImageOps.exif_transpose(check)) == quadrants(upright_quadrants())


def make_folder(folder: Path) -> Path:
    """``folder`` with the corpus files above, ``rotated.jpg`` and ``broken.heic`` (a truncated HEIC)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in FILES.items():
        shutil.copyfile(source, folder / name)
    rotated_jpeg(folder / "rotated.jpg")
    (folder / "broken.heic").write_bytes(ZPUG.read_bytes()[:300])
    return folder


def quadrants(im: Image.Image) -> list[tuple[int, ...]]:
    """The mean colour of each quadrant, rounded to steps of 40 (robust to JPEG noise, not to a turn)."""
    small = im.convert("RGB").resize((2, 2), Image.Resampling.BOX)
    return [tuple(round(c / 40) for c in small.getpixel((x, y))) for y in range(2) for x in range(2)]  # type: ignore[union-attr]


def difference(a: Image.Image, b: Image.Image, size: tuple[int, int] = (48, 64)) -> float:
    """Mean absolute difference (0..255) of two pictures scaled to ``size`` in grey."""
    a_small = a.convert("L").resize(size, Image.Resampling.BOX)
    b_small = b.convert("L").resize(size, Image.Resampling.BOX)
    pixels = zip(a_small.tobytes(), b_small.tobytes(), strict=True)
    return sum(abs(x - y) for x, y in pixels) / (size[0] * size[1])


def reference(path: Path, index: int | None = None) -> Image.Image:
    """What a HEIF/AVIF file shows, decoded by heifkit (libheif applies irot/imir/clap)."""
    heif = heifkit.open_heif(path)
    return (heif if index is None else heif[index]).to_pillow()


def open_any(path: Path) -> Image.Image:
    """An output opened with Pillow (heifkit's plugins registered for HEIC/AVIF) and loaded; kept open, so
    that ``getexif()`` still sees a TIFF's tags."""
    heifkit.register_heif_opener()
    heifkit.register_avif_opener()
    im = Image.open(path)
    im.load()
    return im


def xmp_of(im: Image.Image) -> bytes | None:
    xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    return xmp.encode() if isinstance(xmp, str) else xmp


def jpeg_bytes(im: Image.Image, **params: Any) -> bytes:
    out = io.BytesIO()
    im.save(out, "JPEG", **params)
    return out.getvalue()


# --- a validator for the JSON Schema subset heifkit's schemas use ----------------------------------------

_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def schema_errors(instance: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """Every way ``instance`` breaks ``schema`` (``type``, ``enum``, ``properties``, ``required``,
    ``additionalProperties: false``, ``items``); [] when it conforms."""
    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else types
        if not any(_is_type(instance, t) for t in allowed):
            return [f"{where}: {type(instance).__name__} is not {'/'.join(allowed)}"]
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{where}: {instance!r} not in {schema['enum']}")
    if isinstance(instance, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in instance:
                errors.append(f"{where}: missing {key!r}")
        for key, value in instance.items():
            if key in properties:
                errors.extend(schema_errors(value, properties[key], f"{where}.{key}"))
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: unexpected key {key!r}")
    if isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            errors.extend(schema_errors(item, schema["items"], f"{where}[{i}]"))
    return errors


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])
