"""Decoding threads: the codec's own threads per format, libheif's tile threads, and the cores shared between
decodes that run at the same time. Every setting gives the same pixels."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import heifkit
from conftest import CORPUS, PUG, ZPUG
from heifkit import options
from heifkit._decode import cores as _cores
from heifkit._decode import pixels as decode
from heifkit._native import dav1d as _dav1d

SINGLE = CORPUS / "libheif_example.heic"  # 1280x854, one coded picture
AVIF = CORPUS / "libheif_example.avif"


def _codec_threads_used(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record num_codec_threads of every heif_decoding_options the decoder makes."""
    seen: list[int] = []
    original = decode.decoding_options

    def spy(to_8bit: bool, decoder_id: str, codec_threads: int = 0, **kwargs: Any) -> object:
        opts = original(to_8bit, decoder_id, codec_threads, **kwargs)
        seen.append(int(opts.num_codec_threads))
        return opts

    monkeypatch.setattr(decode, "decoding_options", spy)
    return seen


def test_libde265_and_dav1d_get_the_cores_and_aom_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _codec_threads_used(monkeypatch)
    cores = _cores.cores()
    heifkit.open_heif(SINGLE).data  # noqa: B018
    heifkit.open_heif(AVIF).data  # noqa: B018  (dav1d where heifkit found it, else aom)
    heifkit.open_heif(AVIF, decoder_id="aom").data  # noqa: B018
    assert seen == [cores, cores if _dav1d.library() else 1, 1]


def test_per_call_and_option_override(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _codec_threads_used(monkeypatch)
    heifkit.open_heif(SINGLE, codec_threads=1).data  # noqa: B018
    heifkit.open_heif(AVIF, codec_threads=0).data  # noqa: B018  (0: the codec's own default)
    options.CODEC_THREADS = {"HEIF": 0, "AVIF": 2}
    heifkit.open_heif(SINGLE).data  # noqa: B018
    heifkit.open_heif(AVIF).data  # noqa: B018
    assert seen == [1, 0, 0, min(2, _cores.cores())]


def test_grid_tiles_do_not_multiply_codec_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _codec_threads_used(monkeypatch)
    heifkit.open_heif(PUG).data  # noqa: B018  (8x6 grid: libheif decodes tiles on decode_threads threads)
    cores = _cores.cores()
    assert set(seen) == {max(1, cores // min(options.DECODE_THREADS, cores))}


@pytest.mark.parametrize("value", [-1, 1.5, "2", True])
def test_invalid_codec_threads(value: object) -> None:
    with pytest.raises(ValueError, match="codec_threads"):
        heifkit.open_heif(SINGLE, codec_threads=value)


@pytest.mark.parametrize("path", [SINGLE, PUG, AVIF, ZPUG, CORPUS / "pheif_cat.hif"], ids=lambda p: p.name)
def test_every_thread_setting_gives_the_same_pixels(path) -> None:  # type: ignore[no-untyped-def]
    expected = np.asarray(heifkit.open_heif(path, decode_threads=0, codec_threads=1))
    for threads, codec in [(4, None), (0, 0), (2, 4), (1, 2)]:
        got = np.asarray(heifkit.open_heif(path, decode_threads=threads, codec_threads=codec))
        np.testing.assert_array_equal(got, expected, err_msg=f"decode_threads={threads}, codec_threads={codec}")


def test_running_decodes_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cores, "cores", lambda: 4)
    with _cores.core_share() as alone:
        assert alone == 4
        with _cores.core_share() as second, _cores.core_share() as third:
            assert (second, third) == (2, 1)  # 4 // 2, then 4 // 3
    with _cores.core_share() as again:
        assert again == 4  # the others have finished


@pytest.mark.slow  # a 12 MP grid
def test_parallel_decodes_of_different_files_match_serial() -> None:
    files = [PUG, SINGLE, AVIF, ZPUG] * 2
    serial = [np.asarray(heifkit.open_heif(f)) for f in files]
    results: list[np.ndarray | None] = [None] * len(files)

    def work(i: int) -> None:
        results[i] = np.asarray(heifkit.open_heif(files[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(files))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, expected in zip(results, serial, strict=True):
        np.testing.assert_array_equal(got, expected)
