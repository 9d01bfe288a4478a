"""Writes files so that a reader sees the old content or the new, never half of either.

Only regular files (or new paths) are replaced by rename. A name that resolves to a device, FIFO
or socket (``/dev/null``, ``/dev/stdout``, a pipe) is never replaced: :func:`write_bytes_atomic`
refuses it, and :func:`write_output` (for ``--output`` of data commands) writes into it in place.
Renaming a temporary file over ``/dev/null`` as root would break the machine's ``/dev/null``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path


class NotARegularFileError(OSError):
    """The target exists and is not a regular file (a device, FIFO, socket or directory)."""


def write_bytes_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory, fsync, then rename.

    A crash at any point leaves either the previous file or the complete new one. A symlink is
    followed (the link stays, its target is replaced); a target that is not a regular file is
    refused with :class:`NotARegularFileError` and left as it was.
    """
    _check_replaceable(Path(path))  # before resolving: /dev/stdout may point at a pipe, not a path
    target = _resolved(Path(path))
    _check_replaceable(target)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        temp.chmod(mode)
        # Checked again just before the rename: the name may have changed while we wrote.
        _check_replaceable(target)
        temp.replace(target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    _fsync_directory(target.parent)


def write_text_atomic(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Write UTF-8 ``text`` atomically (see :func:`write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"), mode=mode)


def is_special_file(path: Path) -> bool:
    """True when ``path`` (symlinks followed) exists and is neither a regular file nor a directory."""
    try:
        st = Path(path).stat()
    except OSError:
        return False
    return not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode)


def write_output(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write a command's data output: atomically to a regular file or new path, in place to anything else.

    A device, FIFO or socket (``/dev/null``, ``/dev/stdout``, a pipe a reader holds open) is opened
    and written like a shell's ``>`` would: no temporary file, no rename, no chmod. A FIFO that no
    process reads is an error at once (errno ENXIO), never a hang.
    """
    target = Path(path)  # not resolved: /dev/stdout -> /proc/self/fd/1 -> "pipe:[...]" opens, but is no path
    if not is_special_file(target):
        write_bytes_atomic(target, data, mode=mode)
        return
    flags = os.O_WRONLY | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        # Non-blocking open: a FIFO nobody reads fails at once (ENXIO) instead of hanging a cron job.
        fd = os.open(target, flags | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OSError(errno.ENXIO, "no process is reading from it", str(target)) from exc
        raise
    try:
        os.set_blocking(fd, True)
        if stat.S_ISREG(os.fstat(fd).st_mode):  # replaced by a regular file since the check
            raise NotARegularFileError(f"{target} changed while it was opened")
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and any missing parents, each owner-only (0700) whatever the umask.

    Directories that already exist are left as they are (their mode is the owner's choice).
    """
    missing: list[Path] = []
    current = Path(directory)
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue  # created by a concurrent process: theirs, not ours
        path.chmod(0o700)
    if not Path(directory).is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(directory))


def _resolved(path: Path) -> Path:
    """``path`` with symlinks followed (also a dangling one, so its target is created, not the link replaced)."""
    if path.is_symlink():
        return Path(os.path.realpath(path))
    return path


def _check_replaceable(target: Path) -> None:
    try:
        st = target.stat()
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file (a device, FIFO or socket)"
        raise NotARegularFileError(f"{target} is {kind}; it was left as it was")


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is flushed too.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
