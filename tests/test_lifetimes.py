"""Native lifetimes: nothing decoded from a file outlives the libheif context it depends on (issue 6, item 1).

libheif 1.23 keeps each context's total-memory counter in a process-wide map keyed by the address of the
context's security-limits struct; a decoded ``heif_image`` remembers that address and subtracts its size
when it is released. An image released after its context, once a new context sits at the same address,
subtracts from the new file's counter, which wraps to ~2**64: the next decode of that file fails with
``SecurityLimitError: Memory usage of 184467440737... bytes``. No freed memory is read (valgrind is
silent); only the order of releases shows it, and only when the allocator hands the address out again.

The rule checked here: every pixel buffer, decoded image and handle keeps its context alive, so the
context is freed last. A user sees that as:

1. a matrix: objects taken from a file (``image.data``, numpy arrays, Pillow images from ``to_pillow()``
   and from the plugin, thumbnails, depth and auxiliary images and their ``data``, the ``HeifImage`` and
   the ``HeifFile`` itself) are dropped in every order, with or without other files opened in between
   (each decoded after the next drop). After every drop what is still held keeps its pixels, the files
   opened in between decode, and afterwards other files and the same file decode to a fresh decode's
   pixels;
2. the loops users write: Pillow's ``Image.open``/``load`` over the corpus twice, ``open_heif`` with
   ``to_pillow()``/``np.asarray`` dropping or keeping the results, and the issue's reproducers;
3. the same loops in fresh child processes, so that what earlier tests allocated cannot hide the bug.

AVIF through Pillow needs ``register_avif_opener``, which replaces Pillow's own AVIF plugin for the whole
process, so the AVIF cases of the matrix and the corpus-wide plugin loop run in child processes.
``tests/sanitize_lifetimes.sh`` runs this file under valgrind or AddressSanitizer.
"""

from __future__ import annotations

import itertools
import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import heifkit
import subproc
from conftest import CORPUS, decodable_files

# ---------------------------------------------------------------------------------------------------
# the matrix: objects that outlive their HeifFile, dropped in every order


@dataclass(frozen=True)
class Case:
    """Objects taken from one image of one file: ``kinds`` are keys of ``VIEWS``, "file" and "plugin"."""

    file: str
    kinds: tuple[str, ...]
    index: int = 0  # the top-level image the objects come from
    aux_id: int = 0  # item id of the auxiliary image (from info["aux"])
    # Checks decode every top-level image of the file; False for pheif_pug.heic (12 MP: 0.5 s a decode),
    # whose held HeifFile is then checked by its depth image.
    whole_file: bool = True

    @property
    def path(self) -> Path:
        return CORPUS / self.file

    @property
    def avif(self) -> bool:
        return heifkit.get_file_mimetype(self.path).startswith("image/avif")

    def source_of(self, kind: str) -> str:
        if kind == "file":
            return "main" if self.whole_file else "depth"
        if kind == "plugin":
            return "main"
        return VIEWS[kind][0]

    def sources(self) -> list[str]:
        return sorted({self.source_of(kind) for kind in self.kinds})


def _source_image(heif_file: heifkit.HeifFile, case: Case, source: str) -> Any:
    """The decoded image ``source`` ("main", "thumb", "depth", "aux") of ``case``'s top-level image."""
    image = heif_file[case.index]
    if source == "main":
        return image.load()
    if source == "thumb":
        return image.get_thumbnail(0).load()
    if source == "depth":
        return image.info["depth_images"][0].load()
    assert source == "aux", source
    return image.get_aux_image(case.aux_id).load()


# kind -> (source image, what the user keeps of it)
VIEWS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "image": ("main", lambda image: image),
    "data": ("main", lambda image: image.data),
    "array": ("main", np.asarray),
    "pillow": ("main", lambda image: image.to_pillow()),
    "thumb": ("thumb", lambda image: image),
    "thumb.data": ("thumb", lambda image: image.data),
    "depth": ("depth", lambda image: image),
    "depth.data": ("depth", lambda image: image.data),
    "aux": ("aux", lambda image: image),
    "aux.data": ("aux", lambda image: image.data),
}

# Small files with L, LA, RGBA (HEIC and AVIF), several top-level images, thumbnails, a depth image and
# an auxiliary image (HDR gain map). Five objects make 120 drop orders, four make 24; every kind but
# "depth" and "aux.data" is in two cases or more. test_matrix_cases_have_what_they_claim checks the files.
CASES = {
    # 3 top-level images; image 1 is L 64x64 with a 32 px thumbnail
    "zpug-image1": Case("pheif_zPug_3.heic", ("file", "data", "array", "thumb", "thumb.data"), index=1),
    # image 0 is RGB with two thumbnails; the plugin keeps a multi-frame file open
    "zpug-image0": Case("pheif_zPug_3.heic", ("file", "image", "plugin", "thumb.data")),
    # RGBA 72x72 with a thumbnail
    "rgba-thumb": Case("libheif-fuzz_colors-with-alpha-thumbnail.heic", ("file", "pillow", "plugin", "thumb")),
    # the file of the issue's standalone reproducer: 10-bit RGBA
    "rgba10": Case("pheif_RGBA_10__128x128.heif", ("file", "image", "data", "pillow", "plugin")),
    "la": Case("pheif_LA_8__128x128.heif", ("file", "array", "pillow", "plugin")),
    "l": Case("pheif_L_8__128x128.heif", ("file", "data", "pillow", "plugin")),
    # 4032x3024 with a 768x576 depth image and a 2016x1512 gain map; its main image is not decoded
    "pug-depth-aux": Case("pheif_pug.heic", ("file", "depth.data", "aux"), aux_id=52, whole_file=False),
    # AVIF (child processes): 150x150 with a depth image, 200x200 with a gain map, 64x64 RGBA
    "avif-depth": Case("libavif_colors-animated-8bpc-depth-exif-xmp.avif", ("file", "depth", "depth.data", "plugin")),
    "avif-aux": Case("libavif_colors_hdr_p3.avif", ("file", "data", "aux", "aux.data"), aux_id=4),
    "avif-rgba": Case("pillow_transparency.avif", ("file", "data", "pillow", "plugin")),
}
HEIF_CASES = [name for name, case in CASES.items() if not case.avif]
AVIF_CASES = [name for name, case in CASES.items() if case.avif]

# Opened between drops, in turn with the case's own file, and decoded afresh after every drop order.
OTHER_FILES = (Case("pheif_RGBA_12__29x100.heif", ("image",)), Case("pillow_hopper-missing-pixi.avif", ("image",)))


def _decode(heif_file: heifkit.HeifFile, case: Case) -> dict[str, bytes]:
    """Copies of the pixels of ``case``'s sources (and of every top-level image unless not ``whole_file``)."""
    pixels = {source: bytes(_source_image(heif_file, case, source).data) for source in case.sources()}
    if case.whole_file:
        pixels.update({f"image {i}": bytes(image.data) for i, image in enumerate(heif_file)})
    return pixels


def _fresh(case: Case) -> dict[str, bytes]:
    return _decode(heifkit.open_heif(case.path), case)


def _take(case: Case) -> dict[str, Any]:
    """The objects of ``case``, each referenced by the returned dict only ("file": the HeifFile)."""
    heif_file = heifkit.open_heif(case.path)
    held: dict[str, Any] = {}
    for kind in case.kinds:
        if kind == "file":
            held[kind] = heif_file
        elif kind == "plugin":
            im = Image.open(case.path)
            im.seek(case.index)
            im.load()
            held[kind] = im
        else:
            source, view = VIEWS[kind]
            held[kind] = view(_source_image(heif_file, case, source))
    return held


def _pixels(kind: str, obj: Any, case: Case) -> bytes:
    if kind == "file":
        return bytes(_source_image(obj, case, case.source_of("file")).data)
    if isinstance(obj, memoryview):
        return bytes(obj)
    if isinstance(obj, (np.ndarray, Image.Image)):
        return obj.tobytes()
    return bytes(obj.data)


def _check_held(held: dict[str, Any], case: Case, refs: dict[str, bytes], when: str) -> None:
    for kind, obj in held.items():
        assert _pixels(kind, obj, case) == refs[case.source_of(kind)], f"{kind}: other pixels {when}"


def _check_last_opened(opened: list[tuple[Case, heifkit.HeifFile]], refs: dict[Case, dict[str, bytes]]) -> None:
    other, heif_file = opened[-1]
    assert _decode(heif_file, other) == refs[other], f"{other.file}, opened before this drop, decodes differently"


def _scenario(case: Case, order: tuple[str, ...], reopen: bool, refs: dict[Case, dict[str, bytes]]) -> None:
    """Take ``case``'s objects and drop them in ``order``; raises at the first thing that goes wrong.

    With ``reopen`` a file is opened after every drop and decoded after the next one (it stays open to
    the end): a file whose context may sit where a freed one was, decoded after an object from the freed
    context is released.
    """
    held = _take(case)
    _check_held(held, case, refs[case], "before any drop")
    opened: list[tuple[Case, heifkit.HeifFile]] = []
    for step, kind in enumerate(order):
        del held[kind]
        if opened:
            _check_last_opened(opened, refs)
        if reopen:
            other = (case, *OTHER_FILES)[step % (1 + len(OTHER_FILES))]
            opened.append((other, heifkit.open_heif(other.path)))
        _check_held(held, case, refs[case], f"after dropping {kind}")
    if opened:
        _check_last_opened(opened, refs)
    opened.clear()
    for other in (*OTHER_FILES, case):
        assert _fresh(other) == refs[other], f"{other.file} opened afresh after the drops decodes differently"


def drop_orders(name: str) -> list[tuple[str, ...]]:
    return list(itertools.permutations(CASES[name].kinds))


def run_case(name: str, reopen: bool) -> list[str]:
    """Every drop order of case ``name``; returns the failures as "order: error" lines."""
    case = CASES[name]
    refs = {c: _fresh(c) for c in (case, *OTHER_FILES)}
    failures = []
    for order in drop_orders(name):
        try:
            _scenario(case, order, reopen, refs)
        except Exception as exc:  # the objects of this order go with the traceback: the next starts clean
            failures.append(f"{' > '.join(order)}: {type(exc).__name__}: {exc}")
    return failures


def _matrix_message(name: str, reopen: bool, failures: list[str]) -> str:
    total = len(drop_orders(name))
    head = f"{len(failures)} of {total} drop orders of {CASES[name].file} {CASES[name].kinds} (reopen={reopen}) fail:"
    return "\n".join([head, *failures[:8]])


def test_matrix_cases_have_what_they_claim() -> None:
    for name, case in CASES.items():
        heif_file = heifkit.open_heif(case.path)
        assert len(heif_file) > case.index, name
        info = heif_file[case.index].info
        if "thumb" in case.sources():
            assert info["thumbnails"], name
        if "depth" in case.sources():
            assert info["depth_images"], name
        if "aux" in case.sources():
            assert case.aux_id in itertools.chain.from_iterable(info["aux"].values()), name
    assert len(heifkit.open_heif(CASES["zpug-image0"].path)) == 3
    modes = {name: heifkit.open_heif(CASES[name].path)[CASES[name].index].mode for name in CASES}
    assert modes["zpug-image1"] == modes["l"] == "L"
    assert modes["rgba-thumb"] == modes["rgba10"] == modes["la"] == modes["avif-rgba"] == "RGBA"  # LA: RGBA


@pytest.mark.parametrize("reopen", [False, True], ids=["drops", "reopen-between"])
@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n == "l" else pytest.mark.slow) for n in HEIF_CASES])
def test_drop_orders(name: str, reopen: bool, heif_plugin: None) -> None:
    failures = run_case(name, reopen)
    assert not failures, _matrix_message(name, reopen, failures)


MATRIX_CHILD = """
import json, sys
import heifkit
import test_lifetimes
heifkit.register_heif_opener()
heifkit.register_avif_opener()
print(json.dumps({mode: test_lifetimes.run_case(sys.argv[1], mode == "reopen") for mode in ("drops", "reopen")}))
"""


@pytest.mark.slow  # in child processes
@pytest.mark.parametrize("name", AVIF_CASES)
def test_drop_orders_avif_in_child(name: str) -> None:
    proc = subproc.run_python(MATRIX_CHILD, [name], timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) == {"drops", "reopen"}
    for mode, failures in result.items():
        assert not failures, _matrix_message(name, mode == "reopen", failures)


# ---------------------------------------------------------------------------------------------------
# the loops users write


def _files(mimetype_prefix: str = "", max_pixels: int = Image.MAX_IMAGE_PIXELS) -> list[Path]:
    """Decodable corpus files of a MIME type (by major brand) whose primary image has at most ``max_pixels``.

    With a MIME type, the files the plugin claims: those with the ``mif3`` (``mini``) or ``jpeg`` major
    brand are not HEIF/AVIF to it. Pillow refuses pheif_200MP.heic as a decompression bomb, before
    anything is decoded.
    """
    paths = []
    for name in decodable_files():
        mimetype = heifkit.get_file_mimetype(CORPUS / name)
        width, height = heifkit.open_heif(CORPUS / name).size
        if mimetype.startswith(mimetype_prefix) and width * height <= max_pixels:
            paths.append(CORPUS / name)
    return paths


def _small_files() -> list[Path]:
    """The decodable corpus files of at most 0.5 MP (66 of the 88): HEIC, AVIF, every mode."""
    return _files(max_pixels=500_000)


def _failures_message(failures: list[str], total: int) -> str:
    return "\n".join([f"{len(failures)} of {total} fail:", *failures[:10]])


def test_plugin_loop_over_heif_corpus_twice(heif_plugin: None) -> None:
    """Every HEIF file up to 2 MP (the whole corpus, AVIF too, runs in a child process below)."""
    paths = _files("image/hei", max_pixels=2_000_000)
    assert len(paths) > 15
    failures = []
    for round_ in range(2):
        for path in paths:
            try:
                with Image.open(path) as im:
                    im.load()
            except Exception as exc:
                failures.append(f"round {round_}: {path.name}: {type(exc).__name__}: {exc}")
    assert not failures, _failures_message(failures, 2 * len(paths))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "RGB"])
def test_plugin_opens_one_file_50_times(mode: str, tmp_path: Path, heif_plugin: None) -> None:
    """The issue's reproducer (every second open failed for L, LA and RGBA)."""
    path = tmp_path / f"{mode}.heic"
    color = {"L": 128, "LA": (128, 100), "RGB": (255, 0, 0), "RGBA": (255, 0, 0, 128)}[mode]
    Image.new(mode, (300, 200), color).save(path)
    failures, loaded = [], set()
    for i in range(50):
        try:
            with Image.open(path) as im:
                im.load()
                loaded.add(im.tobytes())
        except Exception as exc:
            failures.append(f"open {i}: {type(exc).__name__}: {exc}")
    assert not failures, _failures_message(failures, 50)
    assert len(loaded) == 1


def test_plugin_cycles_over_a_few_files(heif_plugin: None) -> None:
    names = [
        "pheif_L_8__128x128.heif",
        "pheif_LA_8__128x128.heif",
        "pheif_RGBA_10__128x128.heif",
        "libheif-fuzz_colors-with-alpha-thumbnail.heic",
        "pheif_zPug_3.heic",
        "pheif_RGB_8__29x100.heif",
    ]
    first: dict[str, bytes] = {}
    failures = []
    for cycle in range(30):
        for name in names:
            try:
                with Image.open(CORPUS / name) as im:
                    im.load()
                    pixels = im.tobytes()
            except Exception as exc:
                failures.append(f"cycle {cycle}: {name}: {type(exc).__name__}: {exc}")
                continue
            assert first.setdefault(name, pixels) == pixels, f"cycle {cycle}: {name} decodes differently"
    assert not failures, _failures_message(failures, 30 * len(names))


CONVERTERS: dict[str, Callable[[heifkit.HeifFile], Any]] = {
    "to_pillow": lambda heif_file: heif_file.to_pillow(),
    "asarray": np.asarray,
}


@pytest.mark.parametrize("convert", CONVERTERS)
def test_standalone_loop_dropping_results(convert: str) -> None:
    to_result = CONVERTERS[convert]
    paths = _small_files()
    failures = []
    for round_ in range(2):
        for path in paths:
            try:
                result = to_result(heifkit.open_heif(path))  # the previous result goes once this one is made
            except Exception as exc:
                failures.append(f"round {round_}: {path.name}: {type(exc).__name__}: {exc}")
    assert not failures, _failures_message(failures, 2 * len(paths))
    assert result.tobytes() == to_result(heifkit.open_heif(paths[-1])).tobytes()


@pytest.mark.parametrize("convert", CONVERTERS)
def test_standalone_loop_keeping_results(convert: str) -> None:
    """Every result kept over two passes; then released while a file is open, before it is decoded."""
    to_result = CONVERTERS[convert]
    paths = _small_files()
    for index in range(3):
        kept = [to_result(heifkit.open_heif(path)) for path in paths]
        again = [to_result(heifkit.open_heif(path)) for path in paths]
        heif_file = heifkit.open_heif(paths[index])
        pixels = [result.tobytes() for result in kept]
        assert [result.tobytes() for result in again] == pixels
        kept.clear()
        again.clear()
        assert to_result(heif_file).tobytes() == pixels[index], paths[index].name


@pytest.mark.parametrize("convert", CONVERTERS)
def test_standalone_loop_in_batches(convert: str) -> None:
    """Results kept in batches of 4; a full batch is flushed when the next file is open."""
    to_result = CONVERTERS[convert]
    paths = _small_files()
    failures = []
    batch: list[Any] = []
    for round_ in range(2):
        for path in paths:
            try:
                heif_file = heifkit.open_heif(path)
                if len(batch) == 4:
                    batch.clear()
                batch.append(to_result(heif_file))
            except Exception as exc:
                failures.append(f"round {round_}: {path.name}: {type(exc).__name__}: {exc}")
    assert not failures, _failures_message(failures, 2 * len(paths))


@pytest.mark.parametrize("convert", CONVERTERS)
def test_standalone_viewer_loop(convert: str) -> None:
    """Open the next file, release the picture shown, show the next one, close its file."""
    to_result = CONVERTERS[convert]
    paths = _small_files()
    failures = []
    shown = None
    for round_ in range(2):
        for path in paths:
            try:
                heif_file = heifkit.open_heif(path)
                shown = None
                shown = to_result(heif_file)
                del heif_file
            except Exception as exc:
                failures.append(f"round {round_}: {path.name}: {type(exc).__name__}: {exc}")
    assert not failures, _failures_message(failures, 2 * len(paths))
    assert shown is not None


def test_issue_standalone_sequence() -> None:
    rgba = CORPUS / "pheif_RGBA_10__128x128.heif"
    zpug = CORPUS / "pheif_zPug_3.heic"
    rgba_pixels = bytes(heifkit.open_heif(rgba)[0].data)
    zpug_pixels = [bytes(image.data) for image in heifkit.open_heif(zpug)]

    data = heifkit.open_heif(rgba)[0].data
    second = heifkit.open_heif(zpug)
    assert bytes(data) == rgba_pixels
    del data
    assert [bytes(image.data) for image in second] == zpug_pixels


# ---------------------------------------------------------------------------------------------------
# the same loops in fresh processes


def _run_child(code: str, args: list[str]) -> Any:
    proc = subproc.run_python(textwrap.dedent(code), args, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return json.loads(proc.stdout)


@pytest.mark.slow  # in child processes
def test_plugin_loop_over_whole_corpus_in_child() -> None:
    """HEIF and AVIF files through Pillow, twice over, in a process that did nothing else before."""
    paths = _files("image/hei") + _files("image/avif")
    assert len(paths) > 70
    code = """
        import json, sys
        from PIL import Image
        import heifkit
        heifkit.register_heif_opener()
        heifkit.register_avif_opener()
        failures, loaded = [], 0
        for round_ in range(2):
            for path in sys.argv[1:]:
                try:
                    with Image.open(path) as im:
                        im.load()
                    loaded += 1
                except Exception as exc:
                    failures.append(f"round {round_}: {path}: {type(exc).__name__}: {exc}")
        print(json.dumps({"loaded": loaded, "failures": failures}))
    """
    result = _run_child(code, [str(path) for path in paths])
    assert not result["failures"], _failures_message(result["failures"], 2 * len(paths))
    assert result["loaded"] == 2 * len(paths)


@pytest.mark.slow  # in child processes
def test_issue_plugin_reproducer_in_child(tmp_path: Path) -> None:
    code = """
        import json, sys
        import heifkit
        from PIL import Image
        heifkit.register_heif_opener()
        Image.new("RGBA", (300, 200), (255, 0, 0, 128)).save(sys.argv[1])
        failures = []
        for i in range(50):
            try:
                with Image.open(sys.argv[1]) as im:
                    im.load()
            except Exception as exc:
                failures.append(f"open {i}: {type(exc).__name__}: {exc}")
        print(json.dumps(failures))
    """
    failures = _run_child(code, [str(tmp_path / "rgba.heic")])
    assert not failures, _failures_message(failures, 50)


@pytest.mark.slow  # in child processes
def test_issue_standalone_sequence_in_child() -> None:
    code = """
        import json, sys
        import heifkit
        rgba, zpug = sys.argv[1:]
        expected = [bytes(image.data) for image in heifkit.open_heif(zpug)]
        data = heifkit.open_heif(rgba)[0].data
        second = heifkit.open_heif(zpug)
        del data
        try:
            print(json.dumps([bytes(image.data) == pixels for image, pixels in zip(second, expected)]))
        except Exception as exc:
            print(json.dumps(f"{type(exc).__name__}: {exc}"))
    """
    result = _run_child(code, [str(CORPUS / "pheif_RGBA_10__128x128.heif"), str(CORPUS / "pheif_zPug_3.heic")])
    assert result == [True, True, True]


@pytest.mark.slow  # in child processes
def test_standalone_viewer_loop_in_child() -> None:
    code = """
        import json, sys
        import numpy as np
        import heifkit
        failures, shown = [], None
        for round_ in range(2):
            for path in sys.argv[1:]:
                try:
                    heif_file = heifkit.open_heif(path)
                    shown = None
                    shown = np.asarray(heif_file)
                    del heif_file
                except Exception as exc:
                    failures.append(f"round {round_}: {path}: {type(exc).__name__}: {exc}")
        print(json.dumps(failures))
    """
    paths = _small_files()
    failures = _run_child(code, [str(path) for path in paths])
    assert not failures, _failures_message(failures, 2 * len(paths))
