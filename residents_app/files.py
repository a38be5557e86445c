"""Files the app keeps on disk (the secret key, the SQLite database, uploaded rosters) are private to its
user: 0600, directories 0700, whatever the process's umask (the default umask made them 0644, readable by
every account on the host)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def narrow(path: str | os.PathLike, mode: int) -> None:
    """chmod `path` to `mode` if it exists with other bits; a file the app cannot change is left alone."""
    try:
        if os.stat(path).st_mode & 0o777 != mode:
            os.chmod(path, mode)
    except FileNotFoundError:
        pass
    except OSError as exc:  # not its owner, a read-only file system
        log.warning("cannot make %s private (mode %o): %s", path, mode, exc.strerror)


def private_dir(path: str | os.PathLike) -> Path:
    """`path` as a directory of mode 0700: created with its missing parents (each 0700), or narrowed."""
    path = Path(path)
    missing = []
    parent = path
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        directory.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    for directory in {path, *missing}:
        narrow(directory, PRIVATE_DIR)
    return path


def write_private(path: str | os.PathLike, data: bytes, *, exclusive: bool = False) -> None:
    """Write `data` to a file created 0600 (os.open's mode, then fchmod: the umask cannot widen it and an
    existing file is narrowed). exclusive: fail with FileExistsError if the file exists."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC) | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
