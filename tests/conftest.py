"""Shared fixtures and helpers: where the real-file corpus is, its manifest, well-known files, the lossless
save recipe, synthetic images and PSNR."""

from __future__ import annotations

import collections
import contextlib
import csv
import io
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The real-file corpus ships with the tests (tests/corpus/SOURCES.md: origin and licence of every file);
# HEIFKIT_CORPUS points the suite at another copy.
CORPUS = Path(os.environ.get("HEIFKIT_CORPUS", Path(__file__).resolve().parent / "corpus"))

if not (CORPUS / "MANIFEST.tsv").is_file():
    raise RuntimeError(f"test corpus not found at {CORPUS}: it ships in tests/corpus (or set HEIFKIT_CORPUS)")


ZPUG = CORPUS / "pheif_zPug_3.heic"  # 3 images: 64x64 RGB [thumbnails 32, 16], 64x64 L (primary) [32], 96x64 RGB
ZPUG_MODES = ["RGB", "L", "RGB"]
ZPUG_SIZES = [(64, 64), (64, 64), (96, 64)]
ZPUG_THUMBS = [[32, 16], [32], []]
ZPUG_BYTES = [64 * 64 * 3, 64 * 64, 96 * 64 * 3]
PUG = CORPUS / "pheif_pug.heic"  # 12 MP grid with a depth image and an HDR gain map
ARROW = CORPUS / "pheif_arrow.heic"  # grid with irot and an ICC profile
CAT = CORPUS / "pheif_cat.hif"  # Canon 10-bit 4:2:2 grid, thumbnails [1616, 320, 160]

ALWAYS_KEYS = {"primary", "bit_depth", "exif", "metadata", "thumbnails", "depth_images", "aux"}
"""``info`` keys every image read from a file has."""

LOSSLESS = {"quality": -1, "chroma": 444, "matrix_coefficients": 0}
"""Save parameters for bit-exact lossless HEIF/AVIF."""

# HDR metadata test values (clli, mdcv, amve), as heifkit reads and writes them in ``info``
CLLI = {"max_content_light_level": 1000, "max_pic_average_light_level": 400}
MDCV = {
    "display_primaries_x": (13250, 7500, 34000),
    "display_primaries_y": (34500, 3000, 16000),
    "white_point_x": 15635,
    "white_point_y": 16450,
    "max_display_mastering_luminance": 10000000,
    "min_display_mastering_luminance": 50,
}
AMVE = {"ambient_illumination": 314, "ambient_light_x": 15635, "ambient_light_y": 16450}


def manifest() -> list[dict[str, str]]:
    """Rows of the corpus MANIFEST.tsv (one per file; ``file`` is relative to the corpus)."""
    with open(CORPUS / "MANIFEST.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def decodable_files() -> list[str]:
    """Corpus files (main set) that libheif 1.23.6 decodes."""
    return [r["file"] for r in manifest() if r["set"] == "main" and r["libheif_decode"] == "OK"]


def refused_files() -> list[str]:
    """Corpus files libheif refuses, and everything in bad/."""
    rows = manifest()
    names = {r["file"] for r in rows if r["libheif_decode"] != "OK"}
    names |= {f"bad/{p.name}" for p in (CORPUS / "bad").iterdir() if p.is_file()}
    return sorted(names)


QUICK_FILES = frozenset(
    {
        "pheif_zPug_3.heic",  # three images, monochrome primary, thumbnails
        "pheif_RGB_8__29x100.heif",  # a grid primary, odd size
        "pheif_RGBA_10__128x128.heif",  # 10-bit with alpha
        "pheif_L_12__128x128.heif",  # 12-bit monochrome
        "pheif_RGB_8_chroma444.heif",  # 4:4:4, clap
        "libheif_rainbow-451x461.heic",  # ICC, clap
        "libheif_example.avif",  # AV1 4:2:0, NCLX
        "libheif_simple_osm_tile_alpha.avif",  # AV1 4:4:4 with alpha
        "av1avif-linku_fox.profile2.12bpc.yuv422.odd-width.odd-height.avif",  # 12-bit 4:2:2, odd size
        "av1avif-linku_kimono.mirror-vertical.rotate270.crop.avif",  # clap, irot and imir
        "libavif_abc_color_irot_alpha_irot.avif",  # rotated colour and alpha
        "libavif_sofa_grid1x5_420.avif",  # an AV1 grid
        "libavif_seine_sdr_gainmap_srgb.avif",  # an ISO 21496-1 gain map
        "pillow_icc_profile.avif",  # ICC in AVIF
        "pillow_star.avifs",  # a sequence with alpha
    }
)
"""One corpus file of each kind: the tests that go through the whole corpus take these in ``make check`` (the
others are marked slow: ``make test`` takes every file)."""


def corpus_params(names: Iterable[str]) -> list[Any]:
    """pytest parameters (id: the file name) for a test over corpus files: those outside QUICK_FILES are slow."""
    return [pytest.param(n, id=n, marks=() if n in QUICK_FILES else pytest.mark.slow) for n in names]


@pytest.fixture
def corpus() -> Path:
    return CORPUS


@pytest.fixture(autouse=True)
def _restore_options() -> Iterator[None]:
    """Every heifkit option is put back after each test, whatever the test changed."""
    from heifkit import options

    saved = {name: getattr(options, name) for name in dir(options) if name.isupper()}
    saved = {k: (dict(v) if isinstance(v, dict) else v) for k, v in saved.items()}
    yield
    for name, value in saved.items():
        setattr(options, name, value)


@pytest.fixture
def heif_plugin() -> None:
    """heifkit's HEIF plugin registered with Pillow."""
    import heifkit

    heifkit.register_heif_opener()


def save_bytes(heif_file: Any, **kwargs: Any) -> bytes:
    """``heif_file.save`` into memory."""
    out = io.BytesIO()
    heif_file.save(out, **kwargs)
    return out.getvalue()


def pil_bytes(im: Any, **kwargs: Any) -> bytes:
    """A Pillow image saved as HEIF into memory (``format="AVIF"`` in kwargs overrides)."""
    out = io.BytesIO()
    im.save(out, **{"format": "HEIF", **kwargs})
    return out.getvalue()


def noise(size: tuple[int, int] = (64, 64), mode: str = "RGB", seed: int = 0) -> Any:
    """A Pillow image of random pixels (incompressible: sizes depend strongly on quality)."""
    import numpy as np
    from PIL import Image

    channels = len(Image.new(mode, (1, 1)).getbands())
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], channels) if channels > 1 else (size[1], size[0])
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


def psnr(a: Any, b: Any, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio of two arrays of the same shape, in dB (inf when equal)."""
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


def comparable_info(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` with depth images replaced by something comparable across libraries.

    ``entity_groups`` is new in pillow_heif 1.7+ and not part of the contract (written against 1.6);
    ``gain_maps`` is heifkit's own.
    """
    out = dict(info)
    out.pop("entity_groups", None)
    out.pop("gain_maps", None)
    out["depth_images"] = [(d.size, d.mode, d.info) for d in info.get("depth_images", [])]
    return out


class NativeCalls:
    """The calls heifkit made into its native library (libheif and the C helpers) while a test ran.

    ``counts`` holds how many times each function was called; ``running`` which function each thread is
    inside right now (by ``threading.get_ident()``). Tests assert the work done (a refusal that encodes
    nothing, a call that lets other threads run) instead of how long it took.
    """

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.running: dict[int, str] = {}

    def wrap(self, name: str, function: Any) -> Any:
        """``function``, counted and marked as running under ``name`` while it runs."""

        def call(*args: Any) -> Any:
            self.counts[name] += 1
            thread = threading.get_ident()
            self.running[thread] = name
            try:
                return function(*args)
            finally:
                del self.running[thread]

        return call

    def made(self, *names: str) -> dict[str, int]:
        """How many times each of ``names`` was called (those called at all)."""
        return {name: self.counts[name] for name in names if self.counts[name]}


class _CountingLib:
    """Stands for the extension's ``lib`` in heifkit's modules: its functions are counted, the rest is the same."""

    def __init__(self, real: Any, calls: NativeCalls) -> None:
        self._real, self._calls = real, calls

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._real, name)
        if callable(value):
            value = self._calls.wrap(name, value)
        setattr(self, name, value)  # looked up once
        return value


ENCODING = (
    "heif_image_create",
    "heif_context_encode_image",
    "heif_context_add_grid_image",
    "heif_context_add_image_tile",
)
"""The native calls that make an image to encode, or encode one: a refusal before any work makes none of them."""


def max_rss_mb() -> float:
    """The most memory this process has held, in MiB (Linux reports kB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def counting_native_calls() -> Iterator[NativeCalls]:
    """Counts every call heifkit's modules make through the extension's ``lib`` while the block runs."""
    import importlib
    import pkgutil

    import heifkit
    from heifkit._native import libheif as _lib

    calls = NativeCalls()
    real = _lib.lib
    counting = _CountingLib(real, calls)
    patched = []
    for info in pkgutil.walk_packages(heifkit.__path__, "heifkit."):
        if info.name not in ("heifkit.__main__", "heifkit._native.build"):  # a script, and cffi's build recipe
            module = importlib.import_module(info.name)  # every module that may be used, before it is patched
            if getattr(module, "lib", None) is real:
                module.lib = counting  # type: ignore[attr-defined]
                patched.append(module)
    try:
        yield calls
    finally:
        for module in patched:
            module.lib = real  # type: ignore[attr-defined]


@pytest.fixture
def native_calls() -> Iterator[NativeCalls]:
    """Counts every call heifkit's modules make through the extension's ``lib`` during the test."""
    with counting_native_calls() as calls:
        yield calls


class ReadersKilled:
    """A named pipe at ``path`` that kills whichever process opens it to read (SIGKILL, as the out-of-memory
    killer does), as long as the block runs: a worker that dies on one file, with no hook in heifkit.

    Each reader is held blocked (the pipe is open for writing and nothing comes) until it is found by its
    open file and killed. ``killed`` counts them. Linux only (``/proc``).
    """

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self._victims: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    @property
    def killed(self) -> int:
        """How many processes were killed."""
        return len(self._victims)

    def __enter__(self) -> ReadersKilled:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        import errno
        import signal

        while not self._stop.is_set():
            try:  # succeeds once a process has the pipe open for reading (it then waits for data)
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                self._stop.wait(0.005)
                continue
            try:
                while not self._stop.is_set():
                    readers = [pid for pid in self._readers() if pid not in self._victims]  # not one dying
                    for pid in readers:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                        self._victims.add(pid)
                    if readers:
                        break
                    self._stop.wait(0.001)
            finally:
                os.close(fd)

    def _readers(self) -> list[int]:
        """Other processes that have the pipe open."""
        target = str(self.path)
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
            except OSError:  # gone, or not ours to look at
                continue
            if target in links:
                found.append(int(entry.name))
        return found


def exif_orientation_of(exif: bytes) -> int | None:
    """The orientation tag Pillow reads in EXIF bytes (None when there is none)."""
    from PIL import Image

    e = Image.Exif()
    e.load(exif)
    return e.get(274)


def oriented_grid(fmt: str, size: tuple[int, int], orientation: int) -> bytes:
    """A noisy RGB grid image (64 px tiles) of ``size`` with EXIF ``orientation`` written as irot/imir."""
    import numpy as np
    from PIL import Image

    import heifkit

    rng = np.random.default_rng(orientation)
    src = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[274] = orientation
    out = io.BytesIO()
    heifkit.from_pillow(src).save(out, format=fmt, tile_size=64, exif=exif.tobytes(), quality=80)
    return out.getvalue()


# --- slow checks in child processes, run in the background -------------------------------------------
# The sweep, the leak loops and the fuzz smoke spend minutes in child processes. A module that defines
# ``background_jobs(tmp: Path) -> {key: job}`` has its jobs started on one background thread as soon as
# the tests are collected, longest first, so that they run on the second core while the rest of the suite
# runs on the first; its tests run last (pytest_collection_modifyitems) and wait for the results
# (``background_results``). Run alone (one module, -k), the jobs simply run first.

_BACKGROUND: dict[str, dict[str, Any]] = {}
_POOL: list[Any] = []


BIG_FILES = frozenset(
    {
        "pheif_200MP.heic",
        "pheif_pug.heic",
        "pheif_arrow.heic",
        "pheif_cat.hif",
        "pheif_spatial_photo.heic",
        "pheif_xiaomi.heic",
        "pheif_aux_YCbCr.heic",
        "av1avif-ms_bbb_alpha_inverted.avif",
    }
)
"""Corpus files of 7 MP and more (a decode takes 0.2 s to 10 s): a test parametrized with one is marked slow."""


def _takes_a_big_file(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    values = callspec.params.values() if callspec is not None else ()
    return any((v.name if isinstance(v, Path) else v) in BIG_FILES for v in values if isinstance(v, (str, Path)))


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests parametrized with a big file are slow. The tests of modules with background jobs run after every
    other test, so that no test waits for them while there is other work to do."""
    for item in items:
        if _takes_a_big_file(item):
            item.add_marker(pytest.mark.slow)
    waiting = [item for item in items if hasattr(getattr(item, "module", None), "background_jobs")]
    if waiting:
        last = set(waiting)
        items[:] = [item for item in items if item not in last] + waiting


def pytest_collection_finish(session: pytest.Session) -> None:
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    if session.config.option.collectonly:
        return
    modules = {item.module.__name__: item.module for item in session.items if getattr(item, "module", None)}
    starters = [(name, m.background_jobs) for name, m in modules.items() if hasattr(m, "background_jobs")]
    if not starters:
        return
    pool = ThreadPoolExecutor(1, thread_name_prefix="heifkit-background")
    tmp = Path(tempfile.mkdtemp(prefix="heifkit-background-"))
    _POOL.extend([pool, tmp])
    for name, start in sorted(starters, key=lambda s: getattr(modules[s[0]], "BACKGROUND_ORDER", 9)):
        directory = tmp / name
        directory.mkdir()
        _BACKGROUND[name] = {key: pool.submit(job) for key, job in start(directory).items()}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import shutil

    if _POOL:
        pool, tmp = _POOL
        pool.shutdown(cancel_futures=True)
        shutil.rmtree(tmp, ignore_errors=True)


def background_results(module: str) -> dict[str, Any]:
    """The results of ``module``'s background jobs (waiting for those still running)."""
    return {key: future.result() for key, future in _BACKGROUND[module].items()}
