"""Concurrent decoding gives exactly the single-threaded result (DESIGN §7: every decode releases the GIL).

Eight threads, released together by a barrier, decode

* the same file, each through its own ``open_heif``;
* the images of one shared ``HeifFile`` (each thread walks all images, starting at a different one), which
  must decode each image once and hand every thread the same pixels;
* different files at once (mixed HEVC/AV1, 8/10-bit, mono/colour/alpha, multi-image);

and every result must be byte-identical to a single-threaded decode of the same image.
"""

from __future__ import annotations

import hashlib
import io
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import pytest

import heifkit
from conftest import CORPUS, NativeCalls

THREADS = 8
ROUNDS = 3
SMALL = [
    "pheif_RGB_8__29x100.heif",
    "pheif_zPug_3.heic",  # 3 images
    "pheif_L_10__128x128.heif",  # I;16
    "libheif_simple_osm_tile_alpha.avif",  # AV1 + alpha
    "pillow_hopper.heif",
]
MID = "libheif_example.heic"  # 1280x854, 2 images
FILES = [*SMALL, MID]

T = TypeVar("T")
Decoded = tuple[str, tuple[int, int], int, str]  # mode, size, stride, sha256 of data


def fingerprint(image: Any) -> Decoded:
    data = image.data
    return image.mode, image.size, image.stride, hashlib.sha256(data).hexdigest()


def decode_all(name: str) -> list[Decoded]:
    return [fingerprint(image) for image in heifkit.open_heif(CORPUS / name)]


@pytest.fixture(scope="module")
def reference() -> dict[str, list[Decoded]]:
    """Every image of every file, decoded in this thread alone."""
    return {name: decode_all(name) for name in FILES}


def in_threads(jobs: list[Callable[[], T]]) -> list[T]:
    """Run the jobs on ``len(jobs)`` threads that start together; re-raise the first failure."""
    barrier = threading.Barrier(len(jobs))

    def start(job: Callable[[], T]) -> T:
        barrier.wait(timeout=30)
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(start, job) for job in jobs]
        return [f.result(timeout=120) for f in futures]


@pytest.mark.parametrize("name", FILES, ids=FILES)
def test_same_file_separate_handles(name: str, reference: dict[str, list[Decoded]]) -> None:
    for _ in range(1 if name == MID else ROUNDS):  # the mid-size file: 16 concurrent decodes are plenty
        results = in_threads([lambda: decode_all(name)] * THREADS)
        for k, result in enumerate(results):
            assert result == reference[name], f"thread {k} decoded {name} differently"


@pytest.mark.parametrize("name", FILES, ids=FILES)
def test_shared_heif_file(name: str, reference: dict[str, list[Decoded]]) -> None:
    for _ in range(ROUNDS):
        heif = heifkit.open_heif(CORPUS / name)
        count = len(heif)

        def walk(start: int, heif: heifkit.HeifFile = heif, count: int = count) -> list[tuple[int, Decoded, int]]:
            out = []
            for step in range(count):
                index = (start + step) % count
                image = heif[index]
                out.append((index, fingerprint(image), id(image._data)))
            return out

        results = in_threads([lambda k=k: walk(k) for k in range(THREADS)])
        buffers: dict[int, set[int]] = {}
        for k, result in enumerate(results):
            assert sorted(i for i, _, _ in result) == list(range(count))
            for index, got, buffer_id in result:
                assert got == reference[name][index], f"thread {k}: image {index} of shared {name} differs"
                buffers.setdefault(index, set()).add(buffer_id)
        # one decode per image: every thread saw the same buffer object
        assert all(len(ids) == 1 for ids in buffers.values()), f"{name}: images decoded more than once: {buffers}"
        assert heif.to_pillow().tobytes() == heifkit.open_heif(CORPUS / name).to_pillow().tobytes()


def test_different_files_at_once(reference: dict[str, list[Decoded]]) -> None:
    names = [FILES[k % len(FILES)] for k in range(THREADS)]
    for round_ in range(ROUNDS):
        order = names[round_:] + names[:round_]
        results = in_threads([lambda n=n: decode_all(n) for n in order])
        for name, result in zip(order, results, strict=True):
            assert result == reference[name], f"{name} decoded differently next to other files"


def test_pillow_images_in_threads(reference: dict[str, list[Decoded]]) -> None:
    """to_pillow() on many threads (decode + Pillow wrapping + orientation reset) matches too."""
    names = [FILES[k % len(FILES)] for k in range(THREADS)]
    expected = {n: heifkit.open_heif(CORPUS / n).to_pillow() for n in FILES}
    results = in_threads([lambda n=n: (n, heifkit.open_heif(CORPUS / n).to_pillow()) for n in names])
    for name, img in results:
        want = expected[name]
        assert (img.mode, img.size) == (want.mode, want.size)
        assert img.tobytes() == want.tobytes(), name
        assert img.info.get("exif") == want.info.get("exif")


def _calls_seen_running(calls: NativeCalls, work: Callable[[], object]) -> set[str]:
    """The native calls that ``work``, run on another thread, was inside when this thread got to run.

    The switch interval is raised for the duration, so that the interpreter never takes the GIL from the worker
    between two bytecodes: this thread runs only while the worker waits without it, that is while it is inside
    a call that released the GIL (or once it is done). A call that held the GIL is never seen running.
    """
    done = threading.Event()
    seen: set[str] = set()

    def run() -> None:
        try:
            work()
        finally:
            done.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(60)
    try:
        thread = threading.Thread(target=run)
        thread.start()
        while not done.wait(0.0005):  # waiting lets the worker have the GIL; waking needs it back
            name = calls.running.get(thread.ident or 0)
            if name:
                seen.add(name)
        thread.join()
    finally:
        sys.setswitchinterval(interval)
    return seen


def test_decode_releases_the_gil(native_calls: NativeCalls) -> None:
    path = CORPUS / "pheif_cat.hif"  # a 10-bit 4:2:2 grid
    seen = _calls_seen_running(native_calls, lambda: heifkit.open_heif(path, decode_threads=1).data)
    assert "heif_decode_image" in seen, f"only these calls let another thread run: {sorted(seen)}"


def test_encode_releases_the_gil(native_calls: NativeCalls) -> None:
    rng = np.random.default_rng(0)
    image = heifkit.from_bytes("RGB", (256, 256), rng.integers(0, 256, 256 * 256 * 3, dtype=np.uint8).tobytes())
    seen = _calls_seen_running(native_calls, lambda: image.save(io.BytesIO(), quality=95))
    assert "heif_context_encode_image" in seen, f"only these calls let another thread run: {sorted(seen)}"


def test_the_gil_check_catches_a_call_that_holds_the_gil(native_calls: NativeCalls) -> None:
    holds_the_gil = native_calls.wrap("sum", lambda: sum(range(20_000_000)))  # a C loop that keeps the GIL
    assert _calls_seen_running(native_calls, holds_the_gil) == set()
    assert native_calls.counts["sum"] == 1
