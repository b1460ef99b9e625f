"""Image properties as ``info`` dicts and as libheif structs, read, checked and written side by side: colour
profiles (ICC, NCLX), pixel aspect ratio, HDR metadata (content light level, mastering display colour volume,
ambient viewing environment, nominal diffuse white luminance), grid tiling and camera matrices (read only)."""

from __future__ import annotations

from typing import Any

from .._native.libheif import check, ffi, lib, owned
from .checks import U16, U32, as_int, flag, int_in, is_bytes, mapping, type_name

__all__ = [
    "NCLX_KEYS",
    "SRGB",
    "read_color",
    "read_properties",
    "check_properties",
    "nclx_profile",
    "apply_to_image",
    "apply_to_handle",
]

NCLX_KEYS = ("color_primaries", "transfer_characteristics", "matrix_coefficients", "full_range_flag")
SRGB = {"color_primaries": 1, "transfer_characteristics": 13, "matrix_coefficients": 6, "full_range_flag": 1}
"""The NCLX profile new images are written with."""

# H.273 code points libheif knows: it writes others, but then drops the profile on read (pillow_heif
# cannot open such a file at all), so they are refused.
NCLX_VALUES = {
    "color_primaries": frozenset([1, 2, *range(4, 13), 22]),
    "transfer_characteristics": frozenset([1, 2, *range(4, 19)]),
    "matrix_coefficients": frozenset([0, 1, 2, *range(4, 15)]),
}

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

# info key -> (libheif struct, {field: (samples, largest value)}, handle getter, handle setter);
# fields of more than one sample are tuples in ``info``
_HDR: dict[str, tuple[str, dict[str, tuple[int, int]], str, str]] = {
    "content_light_level": (
        "heif_content_light_level",
        {"max_content_light_level": (1, U16), "max_pic_average_light_level": (1, U16)},
        "heif_image_handle_get_content_light_level",
        "heif_image_handle_set_content_light_level",
    ),
    "mastering_display_colour_volume": (
        "heif_mastering_display_colour_volume",
        {
            "display_primaries_x": (3, U16),
            "display_primaries_y": (3, U16),
            "white_point_x": (1, U16),
            "white_point_y": (1, U16),
            "max_display_mastering_luminance": (1, U32),
            "min_display_mastering_luminance": (1, U32),
        },
        "heif_image_handle_get_mastering_display_colour_volume",
        "heif_image_handle_set_mastering_display_colour_volume",
    ),
    "ambient_viewing_environment": (
        "heif_ambient_viewing_environment",
        {"ambient_illumination": (1, U32), "ambient_light_x": (1, U16), "ambient_light_y": (1, U16)},
        "heif_image_handle_get_ambient_viewing_environment",
        "heif_image_handle_set_ambient_viewing_environment",
    ),
}
_NDWT = "nominal_diffuse_white_luminance"
_TILING = ("num_columns", "num_rows", "tile_width", "tile_height", "image_width", "image_height")
_INTRINSICS = ("focal_length_x", "focal_length_y", "principal_point_x", "principal_point_y", "skew")


def _to_dict(struct: Any, fields: Any) -> dict[str, Any]:
    result = {}
    for name in fields:
        value = getattr(struct, name)
        result[name] = tuple(int(v) for v in value) if isinstance(value, ffi.CData) else value
    return result


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
            profile = _to_dict(owned(out[0], lib.heif_nclx_color_profile_free), _NCLX_READ)
            info["nclx_profile"] = {k: (int(v) if k in NCLX_KEYS else v) for k, v in profile.items()}


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
        info[_NDWT] = int(lib.heif_image_handle_get_nominal_diffuse_white_luminance(handle))
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


# --- checking ---------------------------------------------------------------------------------------


def _check_nclx_value(key: str, value: Any) -> None:
    if key == "full_range_flag":
        flag(value, key)
        return
    number = as_int(value, key)
    if number not in NCLX_VALUES[key]:
        raise ValueError(f"invalid {key} {number}: not an H.273 value libheif supports ({sorted(NCLX_VALUES[key])})")


def check_properties(info: dict[str, Any]) -> None:
    """Check the property values of an ``info`` to write: colour profiles, the NCLX overrides, pixel aspect
    ratio, HDR metadata (TypeError for a wrong type, ValueError for a wrong value)."""
    icc = info.get("icc_profile")
    if icc is not None and not is_bytes(icc):
        raise TypeError(f"icc_profile must be bytes, not {type_name(icc)}")
    kind = info.get("icc_profile_type")
    if kind is not None:
        if not isinstance(kind, str):
            raise TypeError(f"icc_profile_type must be a str ('prof' or 'rICC'), not {type_name(kind)}")
        if kind not in ("prof", "rICC"):
            raise ValueError(f"invalid icc_profile_type {kind!r}: use 'prof' or 'rICC'")
    nclx = mapping(info.get("nclx_profile"), "nclx_profile", NCLX_KEYS)
    for key in NCLX_KEYS:
        if nclx is not None:
            _check_nclx_value(key, nclx[key])
        if info.get(key) is not None:
            _check_nclx_value(key, info[key])
    pasp = info.get("pixel_aspect_ratio")
    if pasp is not None:
        if not isinstance(pasp, (list, tuple)):
            raise TypeError(f"pixel_aspect_ratio must be a (h_spacing, v_spacing) tuple, not {type_name(pasp)}")
        if len(pasp) != 2:
            raise ValueError(f"invalid pixel_aspect_ratio {pasp!r}: use (h_spacing, v_spacing)")
        for value in pasp:
            if not 1 <= as_int(value, "pixel_aspect_ratio values") <= U32:
                raise ValueError(f"invalid pixel_aspect_ratio {tuple(pasp)!r}: both values must be 1..{U32}")
    for key, (_, fields, _, _) in _HDR.items():
        values = mapping(info.get(key), key, tuple(fields))
        for name, (count, largest) in fields.items() if values is not None else ():
            what = f"{key}[{name!r}]"
            samples = values[name]  # type: ignore[index]
            if count > 1:
                if not isinstance(samples, (list, tuple)):
                    raise TypeError(f"{what} must be {count} ints, not {type_name(samples)}")
                if len(samples) != count:
                    raise ValueError(f"{what} must be {count} ints, got {len(samples)}")
            for sample in samples if count > 1 else [samples]:
                int_in(sample, what, 0, largest)
    if info.get(_NDWT) is not None:
        int_in(info[_NDWT], _NDWT, 0, U32)


# --- writing ----------------------------------------------------------------------------------------


def nclx_profile(values: dict[str, Any]) -> Any:
    """An owned ``heif_color_profile_nclx`` with the (checked) NCLX values in ``values``."""
    profile = owned(lib.heif_nclx_color_profile_alloc(), lib.heif_nclx_color_profile_free)
    for key in NCLX_KEYS:
        if values.get(key) is not None:
            setattr(profile, key, 1 if key == "full_range_flag" and values[key] else int(values[key]))
    return profile


def apply_to_image(image: Any, info: dict[str, Any], nclx: dict[str, int] | None = None) -> None:
    """Attach ``info``'s ICC profile, NCLX profile and pixel aspect ratio to a ``heif_image`` to encode.

    ``nclx`` describes the samples when they are not RGB (YCbCr planes) and replaces the image's profile.
    """
    icc = info.get("icc_profile")
    if icc is not None and len(icc) > 0:
        data = bytes(icc)
        check(
            lib.heif_image_set_raw_color_profile(
                image, (info.get("icc_profile_type") or "prof").encode(), data, len(data)
            )
        )
    nclx = nclx or info.get("nclx_profile")
    if nclx:
        check(lib.heif_image_set_nclx_color_profile(image, nclx_profile(nclx)))
    if info.get("pixel_aspect_ratio") is not None:
        lib.heif_image_set_pixel_aspect_ratio(image, *(int(x) for x in info["pixel_aspect_ratio"]))


def apply_to_handle(handle: Any, info: dict[str, Any], grid: bool = False) -> None:
    """Attach ``info``'s HDR metadata (clli, mdcv, amve, ndwt) to an encoded image's handle, and the pixel
    aspect ratio to a grid's (a single image gets it from its ``heif_image``)."""
    if grid and info.get("pixel_aspect_ratio") is not None:
        lib.heif_image_handle_set_pixel_aspect_ratio(handle, *(int(x) for x in info["pixel_aspect_ratio"]))
    for key, (struct, fields, _, setter) in _HDR.items():
        values = info.get(key)
        if values:
            value = ffi.new(struct + "*")
            for name, (count, _) in fields.items():
                if count > 1:
                    getattr(value, name)[0:count] = [int(v) for v in values[name]]
                else:
                    setattr(value, name, int(values[name]))
            getattr(lib, setter)(handle, value)
    if info.get(_NDWT) is not None:  # 0 is valid: it selects the ISO/TS 22028-5 default
        lib.heif_image_handle_set_nominal_diffuse_white_luminance(handle, int(info[_NDWT]))
