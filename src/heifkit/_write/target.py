"""Where encoded bytes go: a path (replaced atomically where that keeps the file what it was, written in place
where a rename would lose it, special files opened like ``open()`` would), or a binary stream."""

from __future__ import annotations

import errno
import os
import secrets
import stat
from typing import Any

__all__ = ["check_target", "write_output"]


def _create_temp(directory: str, name: str) -> tuple[str, int]:
    """A new file next to the target, created with mode 0o666 less the umask (as ``open()`` would)."""
    for _ in range(100):
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.heifkit-tmp")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file in {directory}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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
    """Write ``data`` to a path or to a binary stream.

    A path that names a regular file (or nothing yet) gets a temporary file in the same folder, renamed over
    it: the target is replaced atomically and keeps its permission bits (and owner, where allowed). The file
    is written in place instead (truncated, then written: not atomic) when a rename would lose it: the folder
    is not writable, the file has other hard links, its owner cannot be given back, or it is reached through
    a magic link to a file without a name (``/proc/self/fd/N``). FIFOs, devices and other special files are
    opened and written like ``open(path, "wb")`` would. Symlinks are followed: the target is replaced, not the
    link. Where ``open(path, "wb")`` would fail (a read-only file for a non-root user, a directory), the same
    error is raised and the file is untouched.
    """
    if not isinstance(fp, (str, os.PathLike)):
        if not hasattr(fp, "write"):
            raise TypeError("`fp` must be a path to file or an object with `write` method.")
        fp.write(data)
        return
    given, path, st = _target(fp)
    name = os.fsdecode(given)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
    if st is not None and not stat.S_ISREG(st.st_mode):
        with open(given, "wb") as special:
            special.write(data)
        return
    if st is None:
        new = path or given  # nothing there yet: realpath names where to create it
        try:
            tmp, tmp_fd = _create_temp(*os.path.split(new))
        except OSError as exc:  # name the target, as open() would, not the temporary file
            raise type(exc)(exc.errno, exc.strerror, name) from None
        _replace(tmp, tmp_fd, new, data, None)
        return
    fd = _open_for_writing(given)  # the permission check of open(path, "wb"), with the file left as it is
    try:
        if path is None or st.st_nlink > 1:
            _write_in_place(fd, data)
            return
        try:
            tmp, tmp_fd = _create_temp(*os.path.split(path))
        except PermissionError:  # a writable file in a read-only folder
            _write_in_place(fd, data)
            return
        if not _give_back(tmp_fd, st):
            os.close(tmp_fd)
            os.unlink(tmp)
            _write_in_place(fd, data)
            return
        _replace(tmp, tmp_fd, path, data, st)
    finally:
        os.close(fd)


def _write_in_place(fd: int, data: bytes) -> None:
    os.ftruncate(fd, 0)
    _write_all(fd, data)


def _replace(tmp: str, tmp_fd: int, path: str, data: bytes, st: os.stat_result | None) -> None:
    """Write the temporary file, give it the replaced file's permission bits, and rename it over ``path``."""
    try:
        try:
            _write_all(tmp_fd, data)
            if st is not None:
                os.fchmod(tmp_fd, stat.S_IMODE(st.st_mode))  # after fchown, which may clear set-id bits
        finally:
            os.close(tmp_fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
