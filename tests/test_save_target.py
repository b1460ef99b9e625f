"""Saving respects the target: what ``HeifFile.save(path)`` does to the file that is already there.

``HeifFile.save`` writes a path where ``open(path, "wb")`` could and fails with the same error where it
could not (a read-only file for a non-root user, a directory), leaving the file untouched. A regular file
is replaced atomically (temporary file + rename) with its permission bits and owner; it is written in place
(truncate + write) when a rename would lose it: a writable file in a read-only folder, a file with other
hard links. FIFOs and devices are opened and written, never replaced by a regular file.

Permission checks differ for root, which the suite often runs as: tests of non-root behaviour run their
save in a forked child that drops to uid/gid 65534 (nobody) when the suite runs as root.

Pillow's ``Image.save`` opens (and truncates) the target itself before heifkit runs, so a failed Pillow save
leaves an empty file; the tests document that next to the atomic ``HeifFile.save``.
"""

from __future__ import annotations

import os
import select
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import heifkit
from conftest import LOSSLESS
from heifkit._write import still as _write

ORIGINAL = b"original content, not a HEIF file"
NOBODY = 65534
IS_ROOT = os.geteuid() == 0


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    heifkit.register_heif_opener()


def _pixels(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (16, 24, 3), dtype=np.uint8)


def _heif(seed: int = 0) -> heifkit.HeifFile:
    return heifkit.from_bytes("RGB", (24, 16), _pixels(seed).tobytes())


def _decodes_to(path: Path | str, pixels: np.ndarray) -> bool:
    return bool(np.array_equal(np.asarray(heifkit.open_heif(path)), pixels))


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder that the unprivileged child (uid 65534 when running as root) owns."""
    path = Path(tempfile.mkdtemp(prefix="heifkit-target-"))
    if IS_ROOT:
        os.chown(path, NOBODY, NOBODY)
    yield path
    for root, dirs, _ in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o700)  # let rmtree into folders a test made read-only
    shutil.rmtree(path)


def as_unprivileged(fn: Callable[[], Any], timeout: float = 60) -> str:
    """Run ``fn`` without root's permission overrides and return "ok" or "<exception type>: <message>".

    As root, ``fn`` runs in a forked child that switches to uid/gid 65534 (nobody): a subprocess could not
    run this interpreter, which root installed where nobody may not read.
    """
    if not IS_ROOT:
        try:
            fn()
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return "ok"
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        status = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                fn()
                result = "ok"
            except Exception as exc:
                result = f"{type(exc).__name__}: {exc}"
            os.write(write_end, result.encode())
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], timeout)
        if not ready:
            os.kill(pid, 9)
            raise AssertionError("the unprivileged child timed out")
        chunks = []
        while chunk := os.read(read_end, 65536):
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def _own(path: Path) -> Path:
    """Give ``path`` to the unprivileged user (a no-op when not root)."""
    if IS_ROOT:
        os.chown(path, NOBODY, NOBODY)
    return path


# --- Pillow truncates, HeifFile.save does not -----------------------------------------------------------

BAD_ARGS: dict[str, dict[str, Any]] = {
    "quality=101": {"quality": 101},
    "bad enc_params": {"enc_params": {"no-such-parameter": 1}},
    "unsupported mode in append_images": {"append_images": [Image.new("F", (8, 8))]},
}


@pytest.mark.parametrize("case", sorted(BAD_ARGS))
def test_pillow_save_with_bad_arguments_truncates_heiffile_save_does_not(tmp_path: Path, case: str) -> None:
    """Pillow opens the target with "w+b" before the plugin runs: the documented reason to use HeifFile.save."""
    pillow_target, heif_target = tmp_path / "pillow.heic", tmp_path / "heif.heic"
    pillow_target.write_bytes(ORIGINAL)
    heif_target.write_bytes(ORIGINAL)
    kwargs = BAD_ARGS[case]
    with pytest.raises(ValueError):
        Image.fromarray(_pixels()).save(pillow_target, save_all=True, **kwargs)
    assert pillow_target.read_bytes() == b""  # Pillow's doing; if this changes, update docs/saving.md
    with pytest.raises(ValueError):
        _heif().save(heif_target, **kwargs)
    assert heif_target.read_bytes() == ORIGINAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heif.heic", "pillow.heic"]


def test_pillow_save_to_a_temporary_name_keeps_the_target(tmp_path: Path) -> None:
    """The documented Pillow recipe: save to a temporary name, then os.replace."""
    target = tmp_path / "x.heic"
    target.write_bytes(ORIGINAL)
    tmp = tmp_path / "x.heic.tmp"
    with pytest.raises(ValueError):
        Image.fromarray(_pixels()).save(tmp, format="HEIF", quality=101)
    assert target.read_bytes() == ORIGINAL
    Image.fromarray(_pixels()).save(tmp, format="HEIF", **LOSSLESS)
    os.replace(tmp, target)
    assert _decodes_to(target, _pixels())


# --- read-only files --------------------------------------------------------------------------------------


def test_read_only_file_is_a_permission_error_for_a_user(shared_dir: Path) -> None:
    """Like open(path, "wb"): PermissionError, the file untouched, no temporary file left, nothing encoded."""
    target = shared_dir / "ro.heic"
    target.write_bytes(ORIGINAL)
    _own(target)
    os.chmod(target, 0o444)
    result = as_unprivileged(lambda: _heif().save(target))
    assert result.startswith("PermissionError") and "ro.heic" in result, result
    assert target.read_bytes() == ORIGINAL
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o444
    assert os.listdir(shared_dir) == ["ro.heic"]


def test_read_only_file_is_refused_before_encoding(shared_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = shared_dir / "ro.heic"
    target.write_bytes(ORIGINAL)
    _own(target)
    os.chmod(target, 0o444)

    def no_encoding(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("encoded before checking the target")

    monkeypatch.setattr(_write, "encode_frames", no_encoding)
    assert as_unprivileged(lambda: _heif().save(target)).startswith("PermissionError")


@pytest.mark.skipif(not IS_ROOT, reason="root's behaviour")
def test_read_only_file_as_root_is_written_like_open_would(tmp_path: Path) -> None:
    """root may open a 0444 file for writing, so it may save over one; the mode bits stay 0444."""
    target = tmp_path / "ro.heic"
    target.write_bytes(ORIGINAL)
    os.chmod(target, 0o444)
    with open(target, "rb+"):  # what open(path, "wb") would do: succeed
        pass
    _heif().save(target, **LOSSLESS)
    assert _decodes_to(target, _pixels())
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o444


# --- permissions, owner, links --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o604, 0o755, 0o2664])
def test_mode_bits_are_kept(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "m.heic"
    target.write_bytes(ORIGINAL)
    os.chmod(target, mode)
    _heif().save(target, **LOSSLESS)
    assert stat.S_IMODE(os.stat(target).st_mode) == mode
    assert _decodes_to(target, _pixels())


@pytest.mark.skipif(not IS_ROOT, reason="only root can give a file to another user")
def test_owner_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "o.heic"
    target.write_bytes(ORIGINAL)
    os.chown(target, NOBODY, NOBODY)
    os.chmod(target, 0o640)
    _heif().save(target, **LOSSLESS)
    st = os.stat(target)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (NOBODY, NOBODY, 0o640)


def test_file_of_another_user_is_written_in_place(shared_dir: Path) -> None:
    """A group/world-writable file of another owner keeps its owner: written in place, not replaced."""
    target = shared_dir / "theirs.heic"
    target.write_bytes(ORIGINAL)
    os.chmod(target, 0o666)
    owner = os.stat(target).st_uid
    if not IS_ROOT:
        pytest.skip("needs a file owned by another user")
    result = as_unprivileged(lambda: _heif().save(target, **LOSSLESS))
    assert result == "ok"
    assert os.stat(target).st_uid == owner
    assert _decodes_to(target, _pixels())
    assert os.listdir(shared_dir) == ["theirs.heic"]


def test_hard_links_all_see_the_new_content(tmp_path: Path) -> None:
    """Like open(path, "wb"): the file is written, not replaced, so its other names see the new image."""
    target, other = tmp_path / "a.heic", tmp_path / "b.heic"
    target.write_bytes(ORIGINAL)
    os.link(target, other)
    _heif().save(target, **LOSSLESS)
    assert os.path.samefile(target, other)
    assert _decodes_to(other, _pixels())


# --- read-only folders ---------------------------------------------------------------------------------


def test_writable_file_in_a_read_only_folder_is_written_in_place(shared_dir: Path) -> None:
    folder = shared_dir / "ro-folder"
    folder.mkdir()
    _own(folder)
    target = folder / "f.heic"
    target.write_bytes(ORIGINAL)
    _own(target)
    os.chmod(target, 0o644)
    os.chmod(folder, 0o555)
    result = as_unprivileged(lambda: _heif().save(target, **LOSSLESS))
    assert result == "ok"
    assert _decodes_to(target, _pixels())
    assert os.listdir(folder) == ["f.heic"]


def test_new_file_in_a_read_only_folder_is_a_permission_error(shared_dir: Path) -> None:
    folder = shared_dir / "ro-folder"
    folder.mkdir()
    _own(folder)
    os.chmod(folder, 0o555)
    result = as_unprivileged(lambda: _heif().save(folder / "new.heic"))
    assert result.startswith("PermissionError") and "new.heic" in result, result
    assert "heifkit-tmp" not in result  # the error names the target, as open() would, not a temporary file
    assert os.listdir(folder) == []


def test_missing_folder_is_a_file_not_found_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="new.heic") as excinfo:
        _heif().save(tmp_path / "no-such-folder" / "new.heic")
    assert "heifkit-tmp" not in str(excinfo.value)


# --- FIFOs and devices ---------------------------------------------------------------------------------


def _drain(fd: int, into: list[bytes], deadline: float) -> None:
    """Read a non-blocking FIFO until its writer closes it (or the deadline passes)."""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue  # no writer has come yet
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        into.append(chunk)


def test_fifo_is_written_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.heic"
    os.mkfifo(fifo)
    # a non-blocking reader: the save's open() finds it at once, and nothing hangs if the save never comes
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    received: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(fd, received, time.monotonic() + 30))
    reader.start()
    try:
        _heif().save(fifo, **LOSSLESS)
    finally:
        reader.join()
        os.close(fd)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert np.array_equal(np.asarray(heifkit.open_heif(b"".join(received))), _pixels())
    assert os.listdir(tmp_path) == ["pipe.heic"]


def test_dev_null(shared_dir: Path) -> None:
    """Saving to /dev/null writes to it (run unprivileged: a regression could not replace the real one)."""
    before = os.stat("/dev/null")
    assert as_unprivileged(lambda: _heif().save("/dev/null")) == "ok"
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino


def test_character_device_is_written_not_replaced(tmp_path: Path) -> None:
    """A private copy of the null device, so that the check can run as root too."""
    node = tmp_path / "null.heic"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("cannot create device nodes here")
    _heif().save(node)
    assert stat.S_ISCHR(os.stat(node).st_mode)
    assert os.listdir(tmp_path) == ["null.heic"]


def test_symlink_to_a_device_writes_the_device(shared_dir: Path) -> None:
    """Run unprivileged: a regression replacing the link's target must not be able to replace /dev/null."""
    link = shared_dir / "out.heic"
    link.symlink_to("/dev/null")
    assert as_unprivileged(lambda: _heif().save(link)) == "ok"
    assert link.is_symlink() and os.readlink(link) == "/dev/null"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_magic_link_to_a_pipe(tmp_path: Path) -> None:
    """/proc/self/fd/N (what /dev/stdout is) names no file to rename over: the pipe itself is written."""
    read_end, write_end = os.pipe()
    try:
        _heif().save(f"/proc/self/fd/{write_end}", **LOSSLESS)
        os.close(write_end)
        write_end = -1
        data = b"".join(iter(lambda: os.read(read_end, 65536), b""))
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    assert np.array_equal(np.asarray(heifkit.open_heif(data)), _pixels())


def test_magic_link_to_a_regular_file(tmp_path: Path) -> None:
    target = tmp_path / "f.heic"
    target.write_bytes(ORIGINAL)
    fd = os.open(target, os.O_RDONLY)
    try:
        _heif().save(f"/proc/self/fd/{fd}", **LOSSLESS)
    finally:
        os.close(fd)
    assert _decodes_to(target, _pixels())
    assert os.listdir(tmp_path) == ["f.heic"]


# --- the format follows the extension ------------------------------------------------------------------

EXTENSIONS = {
    ".avif": "image/avif",
    ".AVIF": "image/avif",
    ".avifs": "image/avif",
    ".heic": "image/heic",
    ".HEIC": "image/heic",
    ".heif": "image/heic",
    ".hif": "image/heic",
    ".heics": "image/heic",
    ".heifs": "image/heic",
    ".png": "image/heic",
    "": "image/heic",
}


@pytest.mark.parametrize("extension", sorted(EXTENSIONS))
def test_format_from_extension(tmp_path: Path, extension: str) -> None:
    target = tmp_path / f"out{extension}"
    _heif().save(target, **LOSSLESS)
    f = heifkit.open_heif(target)
    assert f.mimetype == EXTENSIONS[extension]
    assert np.array_equal(np.asarray(f), _pixels())


def test_explicit_format_wins_over_the_extension(tmp_path: Path) -> None:
    _heif().save(tmp_path / "a.avif", format="HEIF")
    _heif().save(tmp_path / "b.heic", format="AVIF")
    assert heifkit.open_heif(tmp_path / "a.avif").mimetype == "image/heic"
    assert heifkit.open_heif(tmp_path / "b.heic").mimetype == "image/avif"


def test_encode_function_and_str_paths_follow_the_extension(tmp_path: Path) -> None:
    heifkit.encode("RGB", (24, 16), _pixels().tobytes(), str(tmp_path / "e.avif"))
    assert heifkit.get_file_mimetype(tmp_path / "e.avif") == "image/avif"


def test_named_stream_is_heif(tmp_path: Path) -> None:
    """Streams are HEIF whatever their name: only paths given to save() choose the format."""
    with open(tmp_path / "s.avif", "wb") as stream:
        _heif().save(stream)
    assert heifkit.get_file_mimetype(tmp_path / "s.avif") == "image/heic"


def test_symlink_named_avif_to_a_heic_name(tmp_path: Path) -> None:
    """The name given decides, not the name of the file a symlink points to."""
    (tmp_path / "real.heic").write_bytes(ORIGINAL)
    (tmp_path / "link.avif").symlink_to("real.heic")
    _heif().save(tmp_path / "link.avif")
    assert heifkit.get_file_mimetype(tmp_path / "real.heic") == "image/avif"
