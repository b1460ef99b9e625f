"""Where encoded bytes go: a path (replaced atomically where that keeps the file what it was, written in place
where a rename would lose it, special files opened like ``open()`` would), or a binary stream.

:func:`write_file` is the one place files are written: ``HeifFile.save`` (through :func:`write_output`) and
file conversion (``heifkit.batch``, ``heifkit convert``, which pass ``overwrite=False`` unless asked to replace).
Nothing is fsynced: a save is as durable as ``open()`` and ``write()`` make it, and a conversion of thousands
of files would wait on the disk for every one.
"""

from __future__ import annotations

import errno
import io
import os
import secrets
import stat
from collections.abc import Callable
from typing import IO, Any

__all__ = ["TMP_SUFFIX", "check_target", "write_file", "write_output"]

TMP_SUFFIX = ".heifkit-tmp"
"""How temporary files end: ``.<name>.<random>.heifkit-tmp`` beside the file they become (``heifkit.batch``
removes those a worker that died left behind)."""

Writer = Callable[[IO[bytes]], object]
"""Writes a file's content to the binary file object it is given (seekable: a temporary file or a memory buffer,
so that Pillow's TIFF writer, which seeks back, works wherever the output goes)."""


def _create_temp(directory: str, name: str) -> tuple[str, int]:
    """A new file next to the target, created with mode 0o666 less the umask (as ``open()`` would)."""
    for _ in range(100):
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}{TMP_SUFFIX}")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file in {directory}")


def _temp_for(path: str, name: str) -> tuple[str, int]:
    """:func:`_create_temp` beside ``path``; its error names ``name`` (the target), as ``open()`` would."""
    try:
        return _create_temp(os.path.dirname(path) or os.curdir, os.path.basename(path))
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, name) from None


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _rendered(write: Writer) -> memoryview:
    """What ``write`` writes, in memory: a file written in place is touched only once its content is complete."""
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getbuffer()


def _open_for_writing(path: str) -> int:
    """Open an existing file for writing without truncating it: fails exactly where ``open(path, "wb")`` would."""
    return os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))


def _give_back(fd: int, st: os.stat_result) -> bool:
    """Give a new file the owner and group of the file it replaces; False when that is not allowed."""
    if (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid()):
        return True
    try:
        os.fchown(fd, st.st_uid, st.st_gid)
    except PermissionError:
        return False
    return True


def _target(fp: Any) -> tuple[str, str | None, os.stat_result | None]:
    """The path as given, the path to rename a new file over (None: none), and the target's stat.

    The kernel follows symlinks for ``stat``/``open``, magic links such as ``/dev/stdout`` and
    ``/proc/self/fd/N`` too; ``realpath`` names the file a plain symlink points to (so that the target is
    replaced, not the link, like ``open()``), but a magic link has no such name: None. The stat is None
    when nothing exists there yet.
    """
    given = os.fsdecode(os.fspath(fp))
    resolved = os.path.realpath(given)
    try:
        st = os.stat(given)
    except FileNotFoundError:
        return given, resolved, None
    try:
        same = os.path.samestat(st, os.stat(resolved))
    except OSError:
        same = False
    return given, resolved if same else None, st


def check_target(fp: Any) -> None:
    """Raise, before any encoding, the error ``open(fp, "wb")`` would raise for a path (streams: nothing).

    A directory is an ``IsADirectoryError``; a read-only file or a missing or unwritable folder a
    ``PermissionError``/``FileNotFoundError``. As for ``open()``, the permission checks are the operating
    system's, so root may write read-only files.
    """
    if not isinstance(fp, (str, os.PathLike)):
        return
    given, path, st = _target(fp)
    name = os.fsdecode(given)
    if st is None:
        directory = os.path.dirname(path or given) or os.curdir
        if not os.path.isdir(directory):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
        kwargs = {"effective_ids": True} if os.access in os.supports_effective_ids else {}
        if not os.access(directory, os.W_OK | os.X_OK, **kwargs):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
    elif stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
    elif stat.S_ISREG(st.st_mode):
        os.close(_open_for_writing(given))
    # FIFOs and devices: opening them could block (a FIFO without reader) or have effects; write_output opens them.


def write_output(fp: Any, data: bytes) -> None:
    """Write ``data`` to a path (:func:`write_file`, replacing what is there) or to a binary stream."""
    if not isinstance(fp, (str, os.PathLike)):
        if not hasattr(fp, "write"):
            raise TypeError("`fp` must be a path to file or an object with `write` method.")
        fp.write(data)
        return
    write_file(fp, lambda f: f.write(data))


def write_file(fp: str | os.PathLike[str], write: Writer, *, overwrite: bool = True) -> bool:
    """Write a path with what ``write`` writes to the binary file object it is given; False: not written.

    A path that names a regular file (or nothing yet) gets a temporary file in the same folder, renamed over
    it: the target is replaced atomically and keeps its permission bits (and owner, where allowed); a new file
    gets mode 0o666 less the umask, as ``open()`` gives. The file is written in place instead (truncated, then
    written: not atomic) when a rename would lose it: the folder is not writable, the file has other hard
    links, its owner cannot be given back, or it is reached through a magic link to a file without a name
    (``/proc/self/fd/N``). FIFOs, devices and other special files are opened and written like
    ``open(path, "wb")`` would. Symlinks are followed: the target is replaced, not the link. Where
    ``open(path, "wb")`` would fail (a read-only file for a non-root user, a directory), the same error is
    raised and the file is untouched.

    Without ``overwrite`` nothing that exists is replaced, like ``open(path, "xb")``: a name that is taken (a
    dangling symlink included) returns False without calling ``write``, and a new file is made a hard link of
    the finished temporary file, which fails when a file appeared at that name meanwhile (False too; where the
    file system has no hard links, the name is checked once more before the rename).

    However it fails (``write`` raising included), no temporary file is left behind and the target is as it
    was: written in place or to a special file, ``write`` runs on a memory buffer first, so only an I/O error
    while writing the buffer out leaves a partial file.
    """
    given, path, st = _target(fp)
    name = os.fsdecode(given)
    if not overwrite:
        return _create(given, name, write)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
    if st is not None and not stat.S_ISREG(st.st_mode):
        data = _rendered(write)
        with open(given, "wb") as special:
            special.write(data)
        return True
    if st is None:
        new = path or given  # nothing there yet: realpath names where to create it
        tmp, tmp_fd = _temp_for(new, name)
        _replace(tmp, tmp_fd, new, write, None)
        return True
    fd = _open_for_writing(given)  # the permission check of open(path, "wb"), with the file left as it is
    try:
        if path is None or st.st_nlink > 1:
            _write_in_place(fd, write)
            return True
        try:
            tmp, tmp_fd = _create_temp(*os.path.split(path))
        except PermissionError:  # a writable file in a read-only folder
            _write_in_place(fd, write)
            return True
        if not _give_back(tmp_fd, st):
            os.close(tmp_fd)
            os.unlink(tmp)
            _write_in_place(fd, write)
            return True
        _replace(tmp, tmp_fd, path, write, st)
        return True
    finally:
        os.close(fd)


def _create(given: str, name: str, write: Writer) -> bool:
    """``write_file`` without ``overwrite``: a new file at ``given`` exactly (the name, not where a link points)."""
    if os.path.lexists(given):
        return False
    tmp, tmp_fd = _temp_for(given, name)  # in the folder of the name, so that the link stays on one file system
    try:
        _write_temp(tmp_fd, write, None)
        try:
            os.link(tmp, given)
        except FileExistsError:
            return False
        except OSError:  # no hard links here (FAT, some network shares): check, then rename
            if os.path.lexists(given):
                return False
            os.replace(tmp, given)
        return True
    finally:
        try:
            os.unlink(tmp)  # the link's other name; gone already after a rename
        except FileNotFoundError:
            pass


def _write_in_place(fd: int, write: Writer) -> None:
    data = _rendered(write)
    os.ftruncate(fd, 0)
    _write_all(fd, data)


def _write_temp(tmp_fd: int, write: Writer, st: os.stat_result | None) -> None:
    """Write and close a temporary file; give it the replaced file's permission bits (``st``: None for none)."""
    with os.fdopen(tmp_fd, "wb") as f:
        write(f)
        f.flush()
        if st is not None:
            os.fchmod(tmp_fd, stat.S_IMODE(st.st_mode))  # after fchown, which may clear set-id bits


def _replace(tmp: str, tmp_fd: int, path: str, write: Writer, st: os.stat_result | None) -> None:
    """Write the temporary file and rename it over ``path``; it is removed if anything fails."""
    try:
        _write_temp(tmp_fd, write, st)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
