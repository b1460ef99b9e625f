"""Image properties as ``info`` dicts and as libheif structs, read and written side by side: colour profiles
(ICC, NCLX), pixel aspect ratio, HDR metadata (content light level, mastering display colour volume, ambient
viewing environment, nominal diffuse white luminance), grid tiling and camera matrices (read only)."""

from __future__ import annotations

from typing import Any

from ._lib import check, ffi, lib, owned

__all__ = [
    "NCLX_KEYS",
    "SRGB",
    "read_color",
    "read_properties",
    "nclx_profile",
    "apply_to_image",
    "apply_to_handle",
]

NCLX_KEYS = ("color_primaries", "transfer_characteristics", "matrix_coefficients", "full_range_flag")
SRGB = {"color_primaries": 1, "transfer_characteristics": 13, "matrix_coefficients": 6, "full_range_flag": 1}
"""The NCLX profile new images are written with."""

_NCLX_READ = (
    *NCLX_KEYS,
    "color_primary_red_x",
    "color_primary_red_y",
    "color_primary_green_x",
    "color_primary_green_y",
    "color_primary_blue_x",
    "color_primary_blue_y",
    "color_primary_white_x",
    "color_primary_white_y",
)

# info key -> (libheif struct, fields, handle getter, handle setter); array fields become tuples
_HDR = {
    "content_light_level": (
        "heif_content_light_level",
        ("max_content_light_level", "max_pic_average_light_level"),
        "heif_image_handle_get_content_light_level",
        "heif_image_handle_set_content_light_level",
    ),
    "mastering_display_colour_volume": (
        "heif_mastering_display_colour_volume",
        (
            "display_primaries_x",
            "display_primaries_y",
            "white_point_x",
            "white_point_y",
            "max_display_mastering_luminance",
            "min_display_mastering_luminance",
        ),
        "heif_image_handle_get_mastering_display_colour_volume",
        "heif_image_handle_set_mastering_display_colour_volume",
    ),
    "ambient_viewing_environment": (
        "heif_ambient_viewing_environment",
        ("ambient_illumination", "ambient_light_x", "ambient_light_y"),
        "heif_image_handle_get_ambient_viewing_environment",
        "heif_image_handle_set_ambient_viewing_environment",
    ),
}
_TILING = ("num_columns", "num_rows", "tile_width", "tile_height", "image_width", "image_height")
_INTRINSICS = ("focal_length_x", "focal_length_y", "principal_point_x", "principal_point_y", "skew")


def _to_dict(struct: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    result = {}
    for name in fields:
        value = getattr(struct, name)
        result[name] = tuple(int(v) for v in value) if isinstance(value, ffi.CData) else value
    return result


def _from_dict(struct: Any, fields: tuple[str, ...], values: dict[str, Any], key: str) -> None:
    try:
        for name in fields:
            value = values[name]
            if isinstance(getattr(struct, name), ffi.CData):
                target = getattr(struct, name)
                for i, item in enumerate(value):
                    target[i] = int(item)
            else:
                setattr(struct, name, int(value))
    except (KeyError, TypeError, IndexError, OverflowError, ValueError) as exc:
        raise ValueError(f"invalid {key} {values!r}: needs integer fields {', '.join(fields)}") from exc


# --- reading ----------------------------------------------------------------------------------------


def read_color(handle: Any, info: dict[str, Any]) -> None:
    """Put the image's colour profile in ``info``: ``icc_profile`` + ``icc_profile_type``, or ``nclx_profile``."""
    kind = lib.heif_image_handle_get_color_profile_type(handle)
    if kind in (lib.heif_color_profile_type_prof, lib.heif_color_profile_type_rICC):
        size = lib.heif_image_handle_get_raw_color_profile_size(handle)
        data = b""
        if size > 0:
            buf = ffi.new("uint8_t[]", size)
            check(lib.heif_image_handle_get_raw_color_profile(handle, buf))
            data = bytes(ffi.buffer(buf, size))
        info["icc_profile"] = data
        info["icc_profile_type"] = "prof" if kind == lib.heif_color_profile_type_prof else "rICC"
    elif kind == lib.heif_color_profile_type_nclx:
        out = ffi.new("heif_color_profile_nclx**")
        if lib.heif_image_handle_get_nclx_color_profile(handle, out).code == 0 and out[0] != ffi.NULL:
            profile = owned(out[0], lib.heif_nclx_color_profile_free)
            info["nclx_profile"] = {k: (int(v) if k in NCLX_KEYS else v) for k, v in _to_dict(profile, _NCLX_READ).items()}


def read_properties(handle: Any, info: dict[str, Any]) -> None:
    """Put the image's pixel aspect ratio, HDR metadata, grid tiling and camera matrices in ``info``."""
    h, v = ffi.new("uint32_t*"), ffi.new("uint32_t*")
    if lib.heif_image_handle_get_pixel_aspect_ratio(handle, h, v):
        info["pixel_aspect_ratio"] = (int(h[0]), int(v[0]))
    for key, (struct, fields, getter, _) in _HDR.items():
        value = ffi.new(struct + "*")
        if getattr(lib, getter)(handle, value):
            info[key] = _to_dict(value, fields)
    if lib.heif_image_handle_has_nominal_diffuse_white_luminance(handle):
        info["nominal_diffuse_white_luminance"] = int(lib.heif_image_handle_get_nominal_diffuse_white_luminance(handle))
    tiling = ffi.new("heif_image_tiling*")
    if lib.heif_image_handle_get_image_tiling(handle, 1, tiling).code == 0 and tiling.num_columns * tiling.num_rows > 1:
        info["tiling"] = {k: int(v) for k, v in _to_dict(tiling, _TILING).items()}
    camera: dict[str, Any] = {}
    if lib.heif_image_handle_has_camera_intrinsic_matrix(handle):
        matrix = ffi.new("heif_camera_intrinsic_matrix*")
        if lib.heif_image_handle_get_camera_intrinsic_matrix(handle, matrix).code == 0:
            camera["camera_intrinsic_matrix"] = _to_dict(matrix, _INTRINSICS)
    if lib.heif_image_handle_has_camera_extrinsic_matrix(handle):
        out = ffi.new("heif_camera_extrinsic_matrix**")
        if lib.heif_image_handle_get_camera_extrinsic_matrix(handle, out).code == 0 and out[0] != ffi.NULL:
            extrinsic = owned(out[0], lib.heif_camera_extrinsic_matrix_release)
            rotation = ffi.new("double[9]")
            if lib.heif_camera_extrinsic_matrix_get_rotation_matrix(extrinsic, rotation).code == 0:
                camera["camera_extrinsic_matrix_rot"] = tuple(rotation[i] for i in range(9))
    if camera:
        info["heif"] = camera


# --- writing ----------------------------------------------------------------------------------------


def nclx_profile(values: dict[str, Any]) -> Any:
    """An owned ``heif_color_profile_nclx`` with the NCLX values in ``values`` (others: libheif's defaults).

    Raises:
        ValueError: a value is not an integer 0..255.
    """
    profile = owned(lib.heif_nclx_color_profile_alloc(), lib.heif_nclx_color_profile_free)
    for key in NCLX_KEYS:
        if values.get(key) is None:
            continue
        try:
            value = int(values[key])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid {key} {values[key]!r}: use an integer") from exc
        if key == "full_range_flag":
            profile.full_range_flag = 1 if value else 0
        elif not 0 <= value <= 255:
            raise ValueError(f"invalid {key} {value}")
        else:
            setattr(profile, key, value)
    return profile


def apply_to_image(image: Any, info: dict[str, Any]) -> None:
    """Attach ``info``'s ICC profile, NCLX profile and pixel aspect ratio to a ``heif_image`` to encode."""
    icc = info.get("icc_profile")
    if icc is not None and len(icc) > 0:
        kind = info.get("icc_profile_type") or "prof"
        if kind not in ("prof", "rICC"):
            raise ValueError(f"invalid icc_profile_type {kind!r}: use 'prof' or 'rICC'")
        data = bytes(icc)
        check(lib.heif_image_set_raw_color_profile(image, kind.encode(), data, len(data)))
    nclx = info.get("nclx_profile")
    if nclx:
        check(lib.heif_image_set_nclx_color_profile(image, nclx_profile(nclx)))
    pasp = info.get("pixel_aspect_ratio")
    if pasp is not None:
        h, v = pixel_aspect_ratio(pasp)
        lib.heif_image_set_pixel_aspect_ratio(image, h, v)


def pixel_aspect_ratio(value: Any) -> tuple[int, int]:
    """``(horizontal, vertical)`` spacing from an ``info["pixel_aspect_ratio"]`` value, checked."""
    try:
        h, v = (int(x) for x in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid pixel_aspect_ratio {value!r}: use (horizontal, vertical)") from exc
    if not (0 < h < 2**32 and 0 < v < 2**32):
        raise ValueError(f"invalid pixel_aspect_ratio {value!r}")
    return h, v


def apply_to_handle(handle: Any, info: dict[str, Any]) -> None:
    """Attach ``info``'s HDR metadata (clli, mdcv, amve, ndwt) to an encoded image's handle."""
    for key, (struct, fields, _, setter) in _HDR.items():
        values = info.get(key)
        if values:
            value = ffi.new(struct + "*")
            _from_dict(value, fields, values, key)
            getattr(lib, setter)(handle, value)
    ndwt = info.get("nominal_diffuse_white_luminance")
    if ndwt is not None:  # 0 is valid: it selects the ISO/TS 22028-5 default
        lib.heif_image_handle_set_nominal_diffuse_white_luminance(handle, nominal_diffuse_white_luminance(ndwt))


def nominal_diffuse_white_luminance(value: Any) -> int:
    """An ``info["nominal_diffuse_white_luminance"]`` value (cd/m^2 x 10000, 32 bits), checked."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise ValueError(f"invalid nominal_diffuse_white_luminance {value!r}: use an integer 0..4294967295")
    return value
