"""What every mode means, for reading and writing: samples per pixel, bits, colour, alpha, channel order.

A mode name is a base and an optional bit depth: ``RGB``, ``RGBA``, ``RGBa`` (premultiplied alpha), ``BGR``
variants of those, ``L``, ``LA``, ``La``, ``I`` (grey, always with a depth), then ``;16`` (samples widened
to 16 bits), ``;10``/``;12`` (samples as decoded), nothing for 8 bits. Samples of more than 8 bits take two
bytes, little endian. Decoded images get the modes of :func:`decoded_mode`; ``from_bytes`` and ``encode``
accept every mode in :data:`MODES`; Pillow images are converted as :data:`PILLOW_CONVERSIONS` says.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Mode", "MODES", "mode_of", "decoded_mode", "PILLOW_CONVERSIONS", "PILLOW_MAPPABLE"]

# base -> (interleaved channels, colour, alpha, premultiplied, BGR order)
_BASES = {
    "L": (1, False, False, False, False),
    "I": (1, False, False, False, False),
    "LA": (2, False, True, False, False),
    "La": (2, False, True, True, False),
    "RGB": (3, True, False, False, False),
    "RGBA": (4, True, True, False, False),
    "RGBa": (4, True, True, True, False),
    "BGR": (3, True, False, False, True),
    "BGRA": (4, True, True, False, True),
    "BGRa": (4, True, True, True, True),
}


@dataclass(frozen=True)
class Mode:
    """The layout of a mode's bytes: ``channels`` interleaved samples of ``bits`` bits per pixel."""

    name: str
    channels: int
    bits: int
    color: bool
    alpha: bool
    premultiplied: bool
    bgr: bool
    ycbcr: bool = False  # Y, Cb, Cr samples (Pillow's "YCbCr": BT.601 full range), only written, never decoded

    @property
    def sample_bytes(self) -> int:
        """Bytes per sample: 2 above 8 bits, else 1."""
        return 2 if self.bits > 8 else 1

    @property
    def pixel_bytes(self) -> int:
        return self.channels * self.sample_bytes

    @property
    def typestr(self) -> str:
        """numpy's type string of one sample (``__array_interface__``)."""
        return "<u2" if self.bits > 8 else "|u1"


YCBCR = Mode("YCbCr", 3, 8, True, False, False, False, ycbcr=True)
"""Pillow's YCbCr, written as it is by Pillow's ``save`` only: not in :data:`MODES`, so no ``HeifImage`` a
user makes or reads has it."""


def mode_of(name: str) -> Mode:
    """The :class:`Mode` called ``name`` (any depth from 1 to 16 bits, e.g. a decoded ``I;9``).

    Raises:
        ValueError: not a mode name.
    """
    if name == "YCbCr":
        return YCBCR
    base, _, depth = name.partition(";")
    layout = _BASES.get(base)
    bits = 8
    if depth:
        digits = depth[:-1] if depth.endswith("L") and base == "I" else depth
        bits = int(digits) if digits.isdigit() else 0
    if layout is None or not 1 <= bits <= 16 or (base == "I" and not depth):
        raise ValueError(f"unknown mode {name!r}")
    return Mode(name, *layout[:1], bits, *layout[1:])


def _writable_modes() -> dict[str, Mode]:
    names = []
    for suffix, bits in (("", 8), (";16", 16), (";12", 12), (";10", 10)):
        names += [base + suffix for base in _BASES if base != "I"]
        if bits > 8:
            names += [f"I;{bits}", f"I;{bits}L"]
    return {name: mode_of(name) for name in names}


MODES = _writable_modes()
"""Every mode ``from_bytes``/``add_frombytes``/``encode`` accept."""


def decoded_mode(
    bits: int,
    monochrome: bool,
    alpha: bool,
    premultiplied: bool,
    convert_hdr_to_8bit: bool = True,
    hdr_to_16bit: bool = True,
    bgr_mode: bool = False,
) -> str:
    """The mode an image decodes to, by pillow_heif's rules (see ``docs/reading.md``).

    Grey without alpha gives ``L``, or ``I;16`` (``I;10``/``I;12`` without ``hdr_to_16bit``) above 8 bits;
    everything else ``RGB(A)`` (``BGR(A)`` with ``bgr_mode``, ``a`` for premultiplied alpha), with
    ``;16``/``;10``/``;12`` above 8 bits unless ``convert_hdr_to_8bit``.

    Raises:
        ValueError: ``bits`` is not 1..16.
    """
    if not 1 <= bits <= 16:
        raise ValueError(f"unsupported bit depth: {bits}")
    high = bits > 8
    if monochrome and not alpha:
        return ("I;16" if hdr_to_16bit else f"I;{bits}") if high else "L"
    base = ("BGR" if bgr_mode else "RGB") + (("a" if premultiplied else "A") if alpha else "")
    if not high or convert_hdr_to_8bit:
        return base
    return base + (";16" if hdr_to_16bit else f";{bits}")


PILLOW_CONVERSIONS: dict[str, str | None] = {
    "1": "L",
    "L": None,
    "LA": None,
    "La": None,
    "P": "RGB",  # RGBA when the palette has transparency
    "PA": "RGBA",
    "RGB": None,
    "RGBA": None,
    "RGBa": None,
    "RGBX": "RGB",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "I": "I;16",
    "I;16": None,
    "I;16L": "I;16",
    "I;16B": "I;16",
    "I;16N": "I;16",
}
"""Pillow mode -> the mode it is saved as (None: kept as it is). Other Pillow modes are refused."""

PILLOW_MAPPABLE = frozenset({"L", "RGBA", "I;16", "RGBX"})
"""Modes whose bytes Pillow maps without a copy (``Image.frombuffer``); others are copied."""
