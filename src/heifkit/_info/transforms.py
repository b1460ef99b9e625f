"""An image's transformations (``irot`` rotation, ``imir`` mirroring, ``clap`` crop): read from libheif, as
data for users who apply them themselves, and applied to a Pillow image.

libheif applies them when it decodes, unless an image is opened with ``apply_transformations=False``: then
the stored pixels are decoded and ``info["transformations"]`` lists what a viewer would do to them, in
order, as dicts: ``{"rotate": 90}`` (degrees counter-clockwise, as Pillow's ``rotate`` and
``Transpose.ROTATE_90``), ``{"mirror": "left_right"}`` or ``{"mirror": "top_bottom"}`` (Pillow's
``FLIP_LEFT_RIGHT``/``FLIP_TOP_BOTTOM``) and ``{"crop": (left, top, right, bottom)}`` (a Pillow box in the
image as the steps before left it). :func:`apply_transformations` applies them.
"""

from __future__ import annotations

from typing import Any

from .._native.libheif import Handle, ffi, lib

__all__ = [
    "transformations",
    "image_size",
    "as_data",
    "orientation_of",
    "orientation_between",
    "orientation_transpose",
    "stored_geometry",
    "apply_transformations",
]


def transformations(handle: Handle) -> tuple[tuple[Any, ...], ...]:
    """The transforms libheif applies to an image, in order: ``("irot", degrees ccw)``, ``("imir", axis)``
    (0 vertical, 1 horizontal) and ``("clap", left, top, right, bottom, width, height)`` (pixels removed
    from each edge of a ``width`` x ``height`` image)."""
    ctx, item = handle.ctx.ptr, lib.heif_image_handle_get_item_id(handle.ptr)
    n = lib.heif_item_get_transformation_properties(ctx, item, ffi.NULL, 0)
    if n <= 0:
        return ()
    ids = ffi.new("heif_property_id[]", n)
    n = lib.heif_item_get_transformation_properties(ctx, item, ids, n)
    width, height = image_size(handle, transformations=False)
    result: list[tuple[Any, ...]] = []
    for prop in ids[0:n]:
        kind = lib.heif_item_get_property_type(ctx, item, prop)
        if kind == lib.heif_item_property_type_transform_rotation:
            angle = lib.heif_item_get_property_transform_rotation_ccw(ctx, item, prop)
            result.append(("irot", angle))
            if angle in (90, 270):
                width, height = height, width
        elif kind == lib.heif_item_property_type_transform_mirror:
            result.append(("imir", int(lib.heif_item_get_property_transform_mirror(ctx, item, prop))))
        elif kind == lib.heif_item_property_type_transform_crop:
            borders = [ffi.new("int*") for _ in range(4)]
            lib.heif_item_get_property_transform_crop_borders(ctx, item, prop, width, height, *borders)
            left, top, right, bottom = (b[0] for b in borders)
            result.append(("clap", left, top, right, bottom, width, height))
            width, height = width - left - right, height - top - bottom
    return tuple(result)


def image_size(handle: Handle, transformations: bool = True) -> tuple[int, int]:
    """An image's size as shown (after rotation and crop), or as stored with ``transformations=False``."""
    if transformations:
        return lib.heif_image_handle_get_width(handle.ptr), lib.heif_image_handle_get_height(handle.ptr)
    return lib.heif_image_handle_get_ispe_width(handle.ptr), lib.heif_image_handle_get_ispe_height(handle.ptr)


def as_data(transforms: tuple[tuple[Any, ...], ...]) -> list[dict[str, Any]]:
    """:func:`transformations` as the public ``info["transformations"]`` (see the module's docstring)."""
    result: list[dict[str, Any]] = []
    for kind, *values in transforms:
        if kind == "irot":
            result.append({"rotate": int(values[0])})
        elif kind == "imir":
            result.append({"mirror": "top_bottom" if values[0] == 0 else "left_right"})  # libheif: 0 flips vertically
        else:
            left, top, right, bottom, width, height = values
            result.append({"crop": (left, top, width - right, height - bottom)})
    return result


_Matrix = tuple[tuple[int, int], tuple[int, int]]

# EXIF orientation -> the linear part of its display transform, acting on (x, y) with y pointing down
_ORIENTATIONS: dict[int, _Matrix] = {
    1: ((1, 0), (0, 1)),
    2: ((-1, 0), (0, 1)),
    3: ((-1, 0), (0, -1)),
    4: ((1, 0), (0, -1)),
    5: ((0, 1), (1, 0)),
    6: ((0, -1), (1, 0)),
    7: ((0, -1), (-1, 0)),
    8: ((0, 1), (-1, 0)),
}


def _step_orientation(step: dict[str, Any]) -> int:
    """The EXIF orientation that does one rotation or mirroring step (1: none).

    Raises:
        ValueError: not a rotation by a multiple of 90 degrees or a mirroring.
    """
    if "rotate" in step and int(step["rotate"]) % 90 == 0:
        return {0: 1, 90: 8, 180: 3, 270: 6}[int(step["rotate"]) % 360]
    if "mirror" in step and step["mirror"] in ("left_right", "top_bottom"):
        return 2 if step["mirror"] == "left_right" else 4
    raise ValueError(f"unknown transformation {step!r}")


def _times(a: _Matrix, b: _Matrix) -> _Matrix:
    """The matrix product ``a @ b`` (``b`` first, then ``a``)."""
    (a0, a1), (a2, a3) = a
    (b0, b1), (b2, b3) = b
    return (a0 * b0 + a1 * b2, a0 * b1 + a1 * b3), (a2 * b0 + a3 * b2, a2 * b1 + a3 * b3)


def orientation_of(data: list[dict[str, Any]]) -> int:
    """The EXIF orientation (1-8) of the rotations and mirrorings in ``data`` (crops left out)."""
    matrix = _ORIENTATIONS[1]
    for step in data:
        if "crop" not in step:
            matrix = _times(_ORIENTATIONS[_step_orientation(step)], matrix)
    return next(o for o, m in _ORIENTATIONS.items() if m == matrix)


def orientation_between(shown: int, wanted: int) -> int:
    """The EXIF orientation whose turn takes an image shown as orientation ``shown`` says to the same stored
    pixels shown as ``wanted`` says (1 when they are the same)."""
    (a, b), (c, d) = _ORIENTATIONS[shown]
    matrix = _times(_ORIENTATIONS[wanted], ((a, c), (b, d)))  # a turn's inverse is its transpose
    return next(o for o, m in _ORIENTATIONS.items() if m == matrix)


def stored_geometry(data: list[dict[str, Any]]) -> tuple[tuple[int, int, int, int] | None, int]:
    """How to write stored pixels so that they show as ``data`` says: the box to keep (None: all) and the
    EXIF orientation to write as ``irot``/``imir`` (libheif writes no ``clap``, so a crop is applied to the
    pixels; it must come first, as MIAF orders them).

    Raises:
        ValueError: a crop after a rotation or mirroring, or more than one crop.
    """
    crops = [i for i, step in enumerate(data) if "crop" in step]
    if crops and crops != [0]:
        raise ValueError(
            "cannot write these transformations: libheif writes no crop, and a crop that follows a rotation or "
            "mirroring cannot be applied to the stored pixels; apply them first (heifkit.apply_transformations)"
        )
    box = tuple(int(v) for v in data[0]["crop"]) if crops else None
    return box, orientation_of(data)  # type: ignore[return-value]


def apply_transformations(image: Any, transformations: list[dict[str, Any]]) -> Any:
    """Apply ``info["transformations"]`` (of an image opened with ``apply_transformations=False``) to a
    Pillow image of its stored pixels: the result is what the image looks like with them applied.

    Raises:
        ValueError: a step that is not a rotation by a multiple of 90 degrees, a mirroring or a crop.
    """
    info = image.info
    for step in transformations:
        image = image.crop(tuple(step["crop"])) if "crop" in step else transposed(image, _step_orientation(step))
    image.info = info
    return image


# EXIF orientation -> the Pillow transpose that shows the image upright
_TRANSPOSE = {
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}


def orientation_transpose(orientation: int) -> Any:
    """The Pillow ``Image.Transpose`` that shows an image stored with EXIF ``orientation`` upright (2: the
    left-right mirror, 6: ``ROTATE_270``, a quarter turn clockwise...), or None for 1 and unknown values."""
    from PIL import Image

    method = _TRANSPOSE.get(orientation)
    return None if method is None else getattr(Image.Transpose, method)


def transposed(img: Any, orientation: int) -> Any:
    """A Pillow image shown upright as the EXIF ``orientation`` says (``info`` kept)."""
    method = orientation_transpose(orientation)
    if method is None:
        return img
    info = img.info
    out = img.transpose(method)
    out.info = info
    return out
