"""AVIF decodes with dav1d (heifkit's in-process libheif plugin) where a dav1d library is found, with aom as
the fallback: every AV1 file of the corpus gives the same pixels with both, at every output depth."""

from __future__ import annotations

import glob
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import features

import heifkit
from conftest import CORPUS, corpus_params, decodable_files, manifest
from heifkit._decode import yuv as _yuv
from heifkit._native import dav1d as _dav1d

pytestmark = pytest.mark.skipif(_dav1d.library() is None, reason="no dav1d library found (AVIF uses aom)")

AV1_FILES = sorted(
    name for name in decodable_files() if any(r["file"] == name and r["codec"].startswith("AV1") for r in manifest())
)


def test_dav1d_is_registered_and_preferred() -> None:
    decoders = heifkit.libheif_info()["decoders"]
    assert "dav1d" in decoders and "heifkit" in decoders["dav1d"] and "aom" in decoders
    assert len(AV1_FILES) > 50


@pytest.mark.parametrize("name", corpus_params(AV1_FILES))
def test_dav1d_gives_aoms_pixels(name: str) -> None:
    path = CORPUS / name
    for flags in ({}, {"convert_hdr_to_8bit": False}):
        ours = heifkit.open_heif(path, **flags)
        reference = heifkit.open_heif(path, decoder_id="aom", **flags)
        assert len(ours) == len(reference)
        for a, b in zip(ours, reference, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=f"{name} {flags}")


def _python(code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, timeout=60, check=True
    )
    return result.stdout.strip()


CHECK = (
    "import heifkit, numpy as np; from heifkit._native import dav1d as _dav1d; "
    f"a = np.asarray(heifkit.open_heif({str(CORPUS / 'libheif_example.avif')!r})); "
    "print(_dav1d.library(), 'dav1d' in heifkit.libheif_info()['decoders'], a.shape)"
)


def test_heifkit_dav1d_0_turns_it_off() -> None:
    assert _python(CHECK, HEIFKIT_DAV1D="0") == "None False (533, 800, 3)"


def test_a_library_without_dav1d_falls_back_to_aom() -> None:
    import PIL

    not_dav1d = sorted(glob.glob(str(Path(PIL.__file__).parent / "_imaging*.so")))[0]  # a library, no dav1d
    assert _python(CHECK, HEIFKIT_DAV1D=not_dav1d) == "None False (533, 800, 3)"
    assert _python(CHECK, HEIFKIT_DAV1D="/no/such/libdav1d.so") == "None False (533, 800, 3)"


def test_damaged_av1_data_is_an_error_not_a_crash() -> None:
    data = bytearray((CORPUS / "libheif_example.avif").read_bytes())
    rng = np.random.default_rng(1)
    for at in rng.integers(len(data) // 2, len(data), 40):  # the coded picture is at the end
        data[at] ^= 0xFF
    code = (
        "import heifkit, sys\n"
        "try:\n    heifkit.open_heif(sys.stdin.buffer.read()).data\n"
        "except heifkit.HeifError:\n    print('error')\n"
        "else:\n    print('decoded')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], input=bytes(data), capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in (b"error", b"decoded")


# --- sequences: dav1d streams a track's samples --------------------------------------------------------

AV1_SEQUENCES = sorted(
    r["file"]
    for r in manifest()
    if r["sequence_tracks"].strip() and r["libheif_seq_decode"] == "OK" and "/av01/" in r["sequence_tracks"]
)


def _frames(sequence: heifkit.HeifSequence) -> list[bytes]:
    return [bytes(frame.data) for frame in sequence]


def test_the_corpus_has_av1_sequences() -> None:
    assert len(AV1_SEQUENCES) >= 5 and "pillow_star.avifs" in AV1_SEQUENCES


@pytest.mark.parametrize("name", AV1_SEQUENCES)
def test_dav1d_gives_aoms_frames(name: str) -> None:
    """Every AV1 sequence of the corpus, frame by frame, at every output depth, and its auxiliary tracks."""
    path = CORPUS / name
    for flags in ({}, {"convert_hdr_to_8bit": False}):
        ours = heifkit.open_sequence(path, **flags)
        named = heifkit.open_sequence(path, decoder_id="dav1d", **flags)
        reference = heifkit.open_sequence(path, decoder_id="aom", **flags)
        expected = _frames(reference)
        assert len(expected) == len(ours) > 1
        assert _frames(ours) == expected, f"{name} {flags}"
        assert _frames(named) == expected, f"{name} {flags}"
        for ids in ours.info["aux_tracks"].values():
            for track_id in ids:
                aux = _frames(ours.get_aux_sequence(track_id))
                assert aux == _frames(reference.get_aux_sequence(track_id))


def test_dav1d_decodes_inter_frames_of_a_written_sequence() -> None:
    """A lossy track of 24 frames (inter-predicted, one key frame): dav1d's frames are aom's, in any access order."""
    images = []
    for i in range(24):
        a = np.zeros((72, 96, 3), np.uint8)
        a[..., 0] = np.arange(96, dtype=np.uint8)[None, :] * 2 + 5 * i
        a[..., 1] = np.arange(72, dtype=np.uint8)[:, None] * 3
        a[10 + i : 30 + i, 20 + 2 * i : 40 + 2 * i] = (250, 30, 60)
        images.append(heifkit.from_bytes("RGB", (96, 72), a.tobytes())[0])
    out = io.BytesIO()
    heifkit.save_sequence(images, out, durations=40, format="AVIF", quality=50, speed=10)
    data = out.getvalue()
    expected = _frames(heifkit.open_sequence(data, decoder_id="aom"))
    sequence = heifkit.open_sequence(data)
    assert _frames(sequence) == expected
    for index in (20, 3, 23, 0, 12):  # backwards starts again from the first frame
        assert bytes(sequence[index].data) == expected[index]


def test_damaged_sample_with_dav1d_fails_its_frame_only() -> None:
    rng = np.random.default_rng(2)
    images = [
        heifkit.from_bytes("RGB", (64, 48), rng.integers(0, 256, 64 * 48 * 3, np.uint8).tobytes())[0] for _ in range(6)
    ]
    out = io.BytesIO()
    heifkit.save_sequence(images, out, durations=40, format="AVIF", quality=-1, chroma=444, matrix_coefficients=0)
    data = out.getvalue()
    assert data.find(b"moov") < data.find(b"mdat")  # the cut below leaves the sample table
    sequence = heifkit.open_sequence(data[: len(data) * 6 // 10], decoder_id="dav1d")
    assert bytes(sequence[1].data) == bytes(images[1].data)
    with pytest.raises(heifkit.HeifError, match="frame 3"):
        sequence[3].load()
    assert bytes(sequence[0].data) == bytes(images[0].data)


def test_layered_av1_decodes_its_operating_point() -> None:
    """av1avif-xiph_quebec_3layer_op2.avif selects operating point 2 (a1op): 360x182, as its ispe says and as
    Pillow's plugin (libavif) decodes it. libheif refuses it before decoding (its sequence header signals
    1436x730 frames), so dav1d decodes that point outside libheif; with aom the error says why."""
    from PIL import Image

    path = CORPUS / "av1avif-xiph_quebec_3layer_op2.avif"
    ours = heifkit.open_heif(path)
    pixels = np.asarray(ours)
    assert ours.size == (360, 182) and pixels.shape == (182, 360, 3)
    with Image.open(path) as theirs:  # Pillow's own AVIF plugin in this process
        reference = np.asarray(theirs.convert("RGB"))
    # the same bytes: converted with the file's colr (BT.709, limited range) in libavif's arithmetic
    assert np.array_equal(pixels, reference)
    assert np.asarray(heifkit.open_heif(path, bgr_mode=True))[..., ::-1].tobytes() == pixels.tobytes()
    with pytest.raises(heifkit.SecurityLimitError, match="layered AV1 .operating point 2. decodes with dav1d only"):
        heifkit.open_heif(path, decoder_id="aom").data  # noqa: B018


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF plugin")
@settings(max_examples=40, deadline=None)
@given(
    size=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    matrix=st.sampled_from([1, 2, 5, 6, 9]),
    full_range=st.booleans(),
    chroma=st.sampled_from([420, 422, 444]),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_conversion_for_layered_av1_gives_pillows_bytes(
    size: tuple[int, int], matrix: int, full_range: bool, chroma: int, seed: int
) -> None:
    """``_yuv.convert_as_libavif`` (what layered AV1 images are converted with) against Pillow's own AVIF plugin
    on generated 8-bit files of every matrix libavif gives libyuv, both ranges, every subsampling and odd sizes:
    the same bytes. Ordinary files take heifkit's default conversion; here it is swapped for this one."""
    from PIL import AvifImagePlugin

    width, height = size
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 160, width, dtype=np.uint8)[None, :, None]
    pixels = (rng.integers(0, 96, (height, width, 3), np.uint8) + ramp).astype(np.uint8)
    out = io.BytesIO()
    heifkit.from_bytes("RGB", size, pixels.tobytes()).save(
        out, format="AVIF", quality=80, chroma=chroma, matrix_coefficients=matrix, full_range_flag=int(full_range),
        color_primaries=1, transfer_characteristics=13,
    )  # fmt: skip
    taken = []

    def as_libavif(image, channels, bgr, target, stride, region, threads):  # type: ignore[no-untyped-def]
        taken.append(region == (0, 0, width, height))
        return _yuv.convert_as_libavif(image, channels, bgr, target, stride)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_yuv, "convert", as_libavif)
        ours = np.asarray(heifkit.open_heif(io.BytesIO(out.getvalue())))
        bgr = np.asarray(heifkit.open_heif(io.BytesIO(out.getvalue()), bgr_mode=True))
    assert taken == [True, True]
    with AvifImagePlugin.AvifImageFile(io.BytesIO(out.getvalue())) as theirs:
        reference = np.asarray(theirs.convert("RGB"))
    assert np.array_equal(ours, reference)
    assert np.array_equal(bgr[..., ::-1], reference)
