"""AVIF decodes with dav1d (heifkit's in-process libheif plugin) where a dav1d library is found, with aom as
the fallback: every AV1 file of the corpus gives the same pixels with both, at every output depth."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import heifkit
from conftest import CORPUS, decodable_files, manifest
from heifkit import _dav1d

pytestmark = pytest.mark.skipif(_dav1d.library() is None, reason="no dav1d library found (AVIF uses aom)")

AV1_FILES = sorted(
    name for name in decodable_files() if any(r["file"] == name and r["codec"].startswith("AV1") for r in manifest())
)


def test_dav1d_is_registered_and_preferred() -> None:
    decoders = heifkit.libheif_info()["decoders"]
    assert "dav1d" in decoders and "heifkit" in decoders["dav1d"] and "aom" in decoders
    assert len(AV1_FILES) > 50


@pytest.mark.parametrize("name", AV1_FILES)
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
    "import heifkit, numpy as np; from heifkit import _dav1d; "
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
