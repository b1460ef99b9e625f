"""Concurrency soak: 8 threads mix decoding, encoding and Pillow plugin work on shared and separate objects for
``HEIFKIT_SOAK_SECONDS`` (10 s in ``make test``; ``make soak`` runs 30 s, the issue's figure). Every result is
bit-identical to the single-threaded one, nothing deadlocks, no job raises.

Jobs, taken in turn by every thread (each starts at another one):

* ``decode``: open a file and decode every image (separate objects);
* ``decode shared``: decode the images of a ``HeifFile`` all threads share; a thread replaces it with a fresh
  one now and then, so first decodes race, and a shared file's images are decoded once;
* ``plugin``: Pillow ``Image.open``, every frame ``seek``/``load``, from a path and from a stream;
* ``encode``: the same pixels encoded to HEIF and AVIF (lossy and lossless) from a ``HeifFile`` all threads
  share: the encoded bytes equal a single-threaded encode's (x265 and aom are deterministic);
* ``save shared``: ``HeifFile.save`` of the shared opened file (re-encoding what was read), read back;
* ``sequence``: ``open_sequence`` and every frame (separate objects); ``sequence shared``: frames of a
  ``HeifSequence`` all threads share, in an order of the thread's own (going back restarts the decoding);
* ``region shared``: a region of the shared grid (only the tiles under it, on thread contexts).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

import heifkit
from conftest import CORPUS, LOSSLESS

pytestmark = pytest.mark.slow  # a soak: threads mixing work for SOAK_SECONDS

SECONDS = float(os.environ.get("HEIFKIT_SOAK_SECONDS", "10"))
THREADS = 8
SEQUENCE = "pillow_star.avifs"  # 5 frames, alpha
REGION = (100, 150, 700, 500)  # of libavif_sofa_grid1x5_420.avif (1024x770): 3 of its 5 tiles
FILES = [
    "pheif_zPug_3.heic",  # 3 images, L and RGB
    "pheif_RGB_10__128x128.heif",  # 10-bit
    "libheif_simple_osm_tile_alpha.avif",  # AV1 + alpha
    "pheif_RGBA_12__29x100.heif",  # 12-bit RGBA
    "libavif_sofa_grid1x5_420.avif",  # a grid (tiles decoded on thread contexts)
    "libavif_colors-animated-8bpc.avif",  # a sequence file
]
PIXELS = np.random.default_rng(7).integers(0, 256, (40, 56, 3), dtype=np.uint8).tobytes()
ENCODINGS: list[dict[str, Any]] = [
    {"format": "HEIF", "quality": 50, "speed": 10},
    {"format": "HEIF", "speed": 10, **LOSSLESS},
    {"format": "AVIF", "quality": 50, "speed": 10},
    {"format": "AVIF", "speed": 10, **LOSSLESS},
]


def _digest(data: Any) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_file(heif_file: heifkit.HeifFile) -> list[str]:
    return [_digest(image.data) for image in heif_file]


def plugin_frames(source: Any) -> list[str]:
    with Image.open(source) as im:
        frames = []
        for frame in range(im.n_frames):
            im.seek(frame)
            im.load()
            frames.append(_digest(im.tobytes()))
        return frames


def encoded(source: heifkit.HeifFile, params: dict[str, Any]) -> str:
    out = io.BytesIO()
    source.save(out, **params)
    return _digest(out.getvalue())


class Shared:
    """Objects every thread uses: a HeifFile per corpus file (replaced now and then) and the encoder source."""

    def __init__(self) -> None:
        self.files = {name: heifkit.open_heif(CORPUS / name) for name in FILES}
        self.source = heifkit.from_bytes("RGB", (56, 40), PIXELS)
        self.sequence = heifkit.open_sequence(CORPUS / SEQUENCE)
        self.replaced = 0

    def replace(self, name: str) -> None:
        self.files[name] = heifkit.open_heif(CORPUS / name)
        self.replaced += 1


def _jobs(shared: Shared, reference: dict[str, Any]) -> list[tuple[str, Callable[[], None]]]:
    def check(what: str, got: Any) -> None:
        if got != reference[what]:
            raise AssertionError(f"{what}: differs from the single-threaded result")

    jobs: list[tuple[str, Callable[[], None]]] = []
    for k, name in enumerate(FILES):
        path = CORPUS / name

        def decode_separate(name: str = name, path: Any = path) -> None:
            check(f"decode {name}", decode_file(heifkit.open_heif(path)))

        jobs.append(("decode", decode_separate))

        def decode_shared(name: str = name, k: int = k) -> None:
            heif_file = shared.files[name]
            check(f"decode {name}", decode_file(heif_file))
            if k % 2 == 0:
                shared.replace(name)

        jobs.append(("decode shared", decode_shared))
        jobs.append(("plugin", lambda name=name: check(f"plugin {name}", plugin_frames(CORPUS / name))))
        data = (CORPUS / name).read_bytes()
        jobs.append(("plugin", lambda name=name, data=data: check(f"plugin {name}", plugin_frames(io.BytesIO(data)))))
    for k, params in enumerate(ENCODINGS):
        jobs.append(("encode", lambda k=k, params=params: check(f"encode {k}", encoded(shared.source, params))))

    def save_shared() -> None:
        heif_file = shared.files["pheif_zPug_3.heic"]
        out = io.BytesIO()
        heif_file.save(out, **ENCODINGS[1])
        check("save shared", decode_file(heifkit.open_heif(out.getvalue())))

    jobs.append(("save shared", save_shared))
    jobs.append(("sequence", lambda: check("sequence", sequence_frames(heifkit.open_sequence(CORPUS / SEQUENCE)))))
    for order in ([4, 0, 2], [1, 3], [0, 1, 2, 3, 4]):

        def sequence_shared(order: list[int] = order) -> None:
            for index in order:
                check(f"sequence frame {index}", _digest(shared.sequence[index].data))

        jobs.append(("sequence shared", sequence_shared))
    grid = "libavif_sofa_grid1x5_420.avif"
    jobs.append(("region shared", lambda: check("region", _digest(shared.files[grid].crop(REGION).data))))
    return jobs


def sequence_frames(sequence: heifkit.HeifSequence) -> list[str]:
    return [_digest(frame.data) for frame in sequence]


def _reference() -> dict[str, Any]:
    """Every job's result, computed in this thread alone."""
    reference: dict[str, Any] = {}
    for name in FILES:
        reference[f"decode {name}"] = decode_file(heifkit.open_heif(CORPUS / name))
        reference[f"plugin {name}"] = plugin_frames(CORPUS / name)
    source = heifkit.from_bytes("RGB", (56, 40), PIXELS)
    for k, params in enumerate(ENCODINGS):
        reference[f"encode {k}"] = encoded(source, params)
    out = io.BytesIO()
    heifkit.open_heif(CORPUS / "pheif_zPug_3.heic").save(out, **ENCODINGS[1])
    reference["save shared"] = decode_file(heifkit.open_heif(out.getvalue()))
    reference["sequence"] = sequence_frames(heifkit.open_sequence(CORPUS / SEQUENCE))
    for index, digest in enumerate(reference["sequence"]):
        reference[f"sequence frame {index}"] = digest
    reference["region"] = _digest(heifkit.open_heif(CORPUS / "libavif_sofa_grid1x5_420.avif").crop(REGION).data)
    return reference


@pytest.fixture(scope="module")
def reference() -> Iterator[dict[str, Any]]:
    """The single-threaded results, with heifkit registered for HEIF and AVIF (Pillow's registry restored after)."""
    Image.init()
    with pytest.MonkeyPatch.context() as patch:
        for name in ("ID", "OPEN", "SAVE", "SAVE_ALL", "EXTENSION", "MIME"):
            patch.setattr(Image, name, getattr(Image, name).copy())
        heifkit.register_heif_opener()
        heifkit.register_avif_opener()  # Pillow opens the AVIF files with heifkit too
        yield _reference()


def test_threads_mixing_decode_encode_and_plugin(reference: dict[str, Any]) -> None:
    shared = Shared()
    jobs = _jobs(shared, reference)
    counts: dict[str, int] = {}
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)
    deadline = time.monotonic() + SECONDS

    def worker(index: int) -> None:
        start.wait(timeout=60)
        for kind, job in itertools.islice(itertools.cycle(jobs), index * 3, None):
            if time.monotonic() >= deadline or failures:
                return
            try:
                job()
            except Exception as exc:
                with lock:
                    failures.append(f"thread {index}, {kind}: {type(exc).__name__}: {exc}")
                return
            with lock:
                counts[kind] = counts.get(kind, 0) + 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 120)  # one job takes well under a second; this is a deadlock
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"threads still running {SECONDS + 120:.0f} s after the deadline (deadlock?): {stuck}"
    assert not failures, "\n".join(failures)
    assert set(counts) == {kind for kind, _ in jobs}, counts
    assert shared.replaced > 0
    print(f"soak {SECONDS:.0f} s, {THREADS} threads: {counts}")


@pytest.mark.parametrize("kind", ["decode", "plugin", "encode", "sequence"])
def test_the_soak_compares_with_the_reference(kind: str, reference: dict[str, Any]) -> None:
    """A job that gives another result than the reference fails (the soak would catch a wrong decode)."""
    wrong = {what: ["other"] if kind in what else result for what, result in reference.items()}
    jobs = [job for name, job in _jobs(Shared(), wrong) if name == kind]
    with pytest.raises(AssertionError, match="differs from the single-threaded result"):
        jobs[0]()
