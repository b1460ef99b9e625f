"""One save, one ``EncodeSettings``: built once at the API boundary from the arguments and ``heifkit.options``,
frozen, and the only thing below it that knows the parameters (the codec chosen once, the caller's dicts never
changed, the options read at the call)."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import pytest
from PIL import Image

import heifkit
from heifkit import options
from heifkit._write import settings as _settings

FAST = {"HEIF": {"preset": "ultrafast"}, "AVIF": {"speed": 9}}


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[_settings.EncodeSettings]:
    """Every EncodeSettings the writer's codec choice is made for (one per call of ``_codec``)."""
    made: list[Any] = []
    real = _settings._codec

    def spy(*args: Any) -> _settings.Codec:
        made.append(args)
        return real(*args)

    monkeypatch.setattr(_settings, "_codec", spy)
    return made


def _images(n: int) -> list[Image.Image]:
    return [Image.new("RGB", (64, 48), (40 * i, 90, 200)) for i in range(n)]


def test_heif_file_save_builds_one_setting_for_every_image(built: list[Any]) -> None:
    f = heifkit.HeifFile()
    for im in _images(3):
        f.add_from_pillow(im)
    f.save(io.BytesIO(), format="HEIF", quality=37, enc_params=FAST["HEIF"], append_images=_images(2))
    assert len(built) == 1


def test_pillow_save_all_builds_one_setting(built: list[Any]) -> None:
    heifkit.register_heif_opener()
    first, *rest = _images(4)
    out = io.BytesIO()
    first.save(out, format="HEIF", save_all=True, append_images=rest, quality=37, enc_params=FAST["HEIF"])
    assert len(built) == 1
    assert len(heifkit.open_heif(out)) == 4


def test_save_sequence_builds_one_setting(built: list[Any]) -> None:
    out = io.BytesIO()
    heifkit.save_sequence(_images(5), out, durations=40, format="AVIF", quality=37, enc_params=FAST["AVIF"])
    assert len(built) == 1
    assert len(heifkit.open_sequence(out.getvalue())) == 5


def test_settings_are_frozen_and_keep_the_callers_dicts() -> None:
    enc_params = {"preset": "ultrafast"}
    settings = _settings.encode_settings({"quality": 37, "enc_params": enc_params, "exif": b"Exif\0\0"}, "HEIF")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.quality = 50  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.enc_params["preset"] = "placebo"  # type: ignore[index]
    with pytest.raises(TypeError):
        settings.image["exif"] = b""  # type: ignore[index]
    assert enc_params == {"preset": "ultrafast"} and settings.enc_params == enc_params
    assert settings.replace(primary_index=0).primary_index == 0 and settings.primary_index is None


def test_defaults_come_from_options_at_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(options, "QUALITY", 61)
    monkeypatch.setattr(options, "SAVE_HDR_TO_12_BIT", True)
    monkeypatch.setattr(options, "SAVE_NCLX_PROFILE", False)
    monkeypatch.setattr(options, "GRID_TILE_SIZE", 256)
    monkeypatch.setitem(options.PREFERRED_ENCODER, "AVIF", "aom")
    settings = _settings.encode_settings({}, "AVIF")
    assert (settings.quality, settings.save_to_12bit, settings.save_nclx_profile) == (61, True, False)
    assert (settings.default_tile_size, settings.encoder, settings.format) == (256, "aom", "AVIF")
    given = _settings.encode_settings({"quality": 20, "save_to_12bit": False, "encoder": "aom"}, "AVIF")
    assert (given.quality, given.save_to_12bit) == (20, False)


def test_the_codec_is_the_settings_own() -> None:
    heic = _settings.encode_settings({"speed": 0}, "HEIF")
    assert heic.codec.fmt == "HEIF" and heic.codec.placebo  # speed 0 is x265's placebo preset
    preset_wins = _settings.encode_settings({"speed": 0, "enc_params": {"preset": "fast"}}, "HEIF")
    assert not preset_wins.codec.placebo
    assert _settings.encode_settings({"subsampling": "4:4:4", "chroma": 420}, "AVIF").chroma == "444"
