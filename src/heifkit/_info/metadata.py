"""EXIF/XMP parsing and the orientation policy.

HEIF stores rotation and mirroring as ``irot``/``imir`` properties that libheif applies on decode, so
decoded pixels are already upright and the EXIF/XMP orientation is informational only. To keep
Pillow's ``exif_transpose`` from rotating a second time, images handed to Pillow get their EXIF
orientation reset to 1 and their XMP ``tiff:Orientation`` removed; the old value is kept in
``info["original_orientation"]``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

ByteOrder = Literal["little", "big"]

__all__ = [
    "exif_from_block",
    "get_orientation",
    "set_orientation",
    "reset_orientation",
    "exif_orientation",
    "xmp_orientation",
    "exif_with_orientation",
    "xmp_with_orientation",
    "exif_from_pillow",
    "xmp_from_pillow",
]

_EXIF_PREFIX = b"Exif\x00\x00"
_ORIENTATION_TAG = 274
# ``(?<!\s)`` starts a match only at the beginning of a whitespace run: without it, ``search`` retries
# ``\s*`` from every position of XMP's whitespace padding, which is quadratic (6 s on a 57 kB packet).
_XMP_ATTR = re.compile(rb'(?<!\s)\s*tiff:Orientation\s*=\s*["\']([0-9])["\']')
_XMP_ELEM = re.compile(rb"(?<!\s)\s*<tiff:Orientation>\s*([0-9])\s*</tiff:Orientation>")


def exif_from_block(block: bytes) -> bytes:
    """EXIF bytes from a HEIF ``Exif`` item: the 4-byte offset header dropped, ``Exif\\0\\0`` kept."""
    if len(block) < 4:
        return block
    start = 4 + int.from_bytes(block[:4], "big")
    if len(block) - start <= 4:  # bogus offset: trust the data after the header
        start = 4
    if start >= 10 and block[start - 6 : start] == _EXIF_PREFIX:
        start -= 6
    return block[start:]


def _tiff_start(exif: bytes) -> int:
    return len(_EXIF_PREFIX) if exif.startswith(_EXIF_PREFIX) else 0


def _find_orientation_entry(exif: bytes) -> tuple[int, ByteOrder] | None:
    """Offset of the value of IFD0's orientation tag, and the byte order, or None."""
    base = _tiff_start(exif)
    header = exif[base : base + 4]
    order: ByteOrder
    if header == b"II*\x00":
        order = "little"
    elif header == b"MM\x00*":
        order = "big"
    else:
        return None
    if len(exif) < base + 8:
        return None
    ifd = base + int.from_bytes(exif[base + 4 : base + 8], order)
    if ifd + 2 > len(exif):
        return None
    count = int.from_bytes(exif[ifd : ifd + 2], order)
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(exif):
            return None
        if int.from_bytes(exif[entry : entry + 2], order) == _ORIENTATION_TAG:
            return entry + 8, order
    return None


def exif_orientation(exif: bytes | None) -> int | None:
    """The orientation (1..8) in IFD0 of ``exif``, or None when absent or unreadable."""
    if not exif:
        return None
    found = _find_orientation_entry(exif)
    if found is None:
        return None
    offset, order = found
    value = int.from_bytes(exif[offset : offset + 2], order)
    return value if 1 <= value <= 8 else None


def xmp_orientation(xmp: bytes | None) -> int | None:
    """The ``tiff:Orientation`` (1..8) in an XMP packet, or None."""
    if not xmp:
        return None
    m = _XMP_ATTR.search(xmp) or _XMP_ELEM.search(xmp)
    if not m:
        return None
    value = int(m.group(1))
    return value if 1 <= value <= 8 else None


def get_orientation(info: dict[str, Any]) -> int | None:
    """Orientation from ``info``'s EXIF (when not 1), else its XMP; None when neither has one."""
    value = exif_orientation(info.get("exif"))
    if value is None or value == 1:
        xmp_value = xmp_orientation(info.get("xmp"))
        if xmp_value is not None:
            return xmp_value
    return value


def _to_utf8(xmp: bytes) -> bytes:
    try:
        xmp.decode("utf-8")
        return xmp
    except UnicodeDecodeError:
        return xmp.decode("latin-1").encode("utf-8")


def set_orientation(info: dict[str, Any]) -> int | None:
    """Reset the orientation in ``info`` (EXIF tag to 1, XMP ``tiff:Orientation`` removed).

    Returns the previous orientation, or None when there was none (or it was 1). EXIF wins over XMP
    when both have one; both are reset. Never adds tags. Latin-1 XMP is re-encoded as UTF-8.
    """
    original = None
    exif = info.get("exif")
    if exif:
        found = _find_orientation_entry(exif)
        if found is not None:
            offset, order = found
            value = int.from_bytes(exif[offset : offset + 2], order)
            if value != 1 and 1 <= value <= 8:
                original = value
                info["exif"] = bytes(exif[:offset]) + (1).to_bytes(2, order) + bytes(exif[offset + 2 :])
    xmp = info.get("xmp")
    if xmp:
        xmp = info["xmp"] = _to_utf8(bytes(xmp))  # Pillow's XMP parser (defusedxml) wants UTF-8
        xmp_value = xmp_orientation(xmp)
        if xmp_value is not None:
            stripped = _XMP_ELEM.sub(b"", _XMP_ATTR.sub(b"", xmp))
            info["xmp"] = _to_utf8(stripped)
            if original is None and xmp_value != 1:
                original = xmp_value
    return original


def reset_orientation(info: dict[str, Any], applied: bool) -> int | None:
    """:func:`set_orientation` for pixels whose orientation was ``applied`` (libheif turned them by the file's
    ``irot``/``imir``): returns the old value. Otherwise the EXIF/XMP orientation stays, for a viewer to apply
    (only Latin-1 XMP is re-encoded as UTF-8), and None is returned."""
    if applied:
        return set_orientation(info)
    if info.get("xmp"):
        info["xmp"] = _to_utf8(bytes(info["xmp"]))
    return None


def exif_with_orientation(exif: bytes | None, value: int) -> bytes:
    """``exif`` with its IFD0 orientation tag set to ``value`` (1..8).

    A tag that is there is patched in place, so that every other byte (maker notes and their offsets included)
    stays as it was. Without one, the EXIF is read with Pillow's ``Image.Exif`` and written again with the tag
    added (the ``Exif\\0\\0`` start kept as it was); no EXIF at all gives a minimal one holding the tag alone.

    Raises:
        ValueError: ``value`` is not 1..8, or ``exif`` has no orientation tag and Pillow cannot read it.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 8:
        raise ValueError(f"an EXIF orientation is 1..8, not {value!r}")
    exif = bytes(exif) if exif else b""
    found = _find_orientation_entry(exif) if exif else None
    if found is not None:
        offset, order = found
        return exif[:offset] + value.to_bytes(2, order) + exif[offset + 2 :]
    from PIL import Image

    tags = Image.Exif()
    if exif:
        try:
            tags.load(exif)
        except Exception as exc:  # Pillow raises what its TIFF reader meets (struct.error, SyntaxError...)
            raise ValueError(f"the EXIF cannot be read to add an orientation: {exc}") from None
    tags[_ORIENTATION_TAG] = value
    written = tags.tobytes()
    # Pillow writes Exif\0\0 first; an EXIF that had no such start keeps none, and a new one gets none
    return written if exif.startswith(_EXIF_PREFIX) else written.removeprefix(_EXIF_PREFIX)


def xmp_with_orientation(xmp: bytes, value: int) -> bytes:
    """``xmp`` with the value of each ``tiff:Orientation`` it has (attribute or element) replaced by ``value``;
    an XMP packet without one is returned as it is (XMP is not given one: EXIF carries it). Latin-1 XMP is
    re-encoded as UTF-8."""
    digit = str(int(value)).encode()

    def replace(match: re.Match[bytes]) -> bytes:
        start, end = match.start(1) - match.start(), match.end(1) - match.start()
        return match.group(0)[:start] + digit + match.group(0)[end:]

    return _to_utf8(_XMP_ELEM.sub(replace, _XMP_ATTR.sub(replace, bytes(xmp))))


def exif_from_pillow(img: Any) -> bytes | None:
    """EXIF bytes of a Pillow image: ``info["exif"]`` else ``getexif()`` (None when empty)."""
    exif = img.info.get("exif")
    if exif is None:
        tags = img.getexif()
        return tags.tobytes() if len(tags) else None  # no tags: no EXIF (tobytes() would give a header)
    if isinstance(exif, str):
        exif = exif.encode("latin-1")
    return bytes(exif) if exif else exif


def xmp_from_pillow(img: Any) -> bytes | None:
    """XMP bytes of a Pillow image: ``info["xmp"]``, else PNG's ``XML:com.adobe.xmp`` text chunk."""
    xmp = img.info.get("xmp")
    if xmp is None:
        xmp = img.info.get("XML:com.adobe.xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    return bytes(xmp) if xmp else None
