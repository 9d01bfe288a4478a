"""Reads local input files (configuration, exceptions, attestations): regular files only, bounded, never blocking.

A FIFO or a device given as a file (``--config /dev/zero``, a named pipe) is refused at once,
without reading from it: opening uses ``O_NONBLOCK`` (a FIFO without a writer does not wait) and
the type is checked on the open descriptor before any read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from auditor.errors import ConfigurationError

#: The largest local input file read (auditor.toml, exceptions, attestations): far beyond any real one.
MAX_INPUT_BYTES = 1024 * 1024


def read_input_file(path: Path, what: str, *, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``); ConfigurationError (exit 2) otherwise.

    ``what`` names the file in messages ("configuration file", "exceptions file").
    """
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ConfigurationError(f"The {what} {path} does not exist.") from None
    except OSError as exc:
        raise ConfigurationError(f"Cannot read the {what} {path}: {exc.strerror or exc}.") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigurationError(
                f"The {what} {path} is not a regular file ({_kind(info.st_mode)}); it was not read.",
                hint=f"Give the path of a regular {what}.",
            )
        if info.st_size > limit:
            raise ConfigurationError(
                f"The {what} {path} is {info.st_size:,} bytes; at most {limit:,} bytes are read.",
                hint=f"Check that this is the {what} you meant.",
            )
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(65536, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # grew while being read
                raise ConfigurationError(
                    f"The {what} {path} is larger than {limit:,} bytes; it was not read.",
                    hint=f"Check that this is the {what} you meant.",
                )
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigurationError(f"Cannot read the {what} {path}: {exc.strerror or exc}.") from exc
    finally:
        os.close(fd)


def read_input_text(path: Path, what: str, *, limit: int = MAX_INPUT_BYTES) -> str:
    """:func:`read_input_file` decoded as UTF-8 (a decoding error is a ConfigurationError naming the file)."""
    data = read_input_file(path, what, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigurationError(f"{path}:{line}: the {what} is not UTF-8 text ({exc.reason}).") from exc


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"
