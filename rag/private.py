"""Files and folders the app writes in its data folder, owner-only whatever the folder's mode.

The data folder holds every conversation, every password hash and the sign-in secret. A user may create
it themselves (mode 0755 is common), so nothing here relies on the folder's mode or the process umask:
folders the app creates are 0700, files 0600, and a file of ours found looser is tightened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create `path` and any missing parents as 0700 folders (existing ones are left as they are).

    Raises OSError (e.g. FileExistsError: a plain file stands where a folder should be).
    """
    missing: list[Path] = []
    probe = path
    while not probe.exists() and not probe.is_symlink():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            if not folder.is_dir():
                raise
        os.chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask
    if not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder")
    return path


def private_file(path: Path) -> Path:
    """Make sure `path` exists as an owner-only file: created empty with 0600 when absent, tightened when
    it is ours and readable by others. The folder must exist."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        tighten(path)
        return path
    try:
        os.fchmod(fd, FILE_MODE)  # O_CREAT's mode is filtered by the umask; never looser than asked
    finally:
        os.close(fd)
    return path


def tighten(path: Path) -> None:
    """Remove group and other permissions from a file of ours (someone else's file is left alone)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o077:
        os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o077)


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole and owner-only: a 0600 temporary file beside it, renamed into place."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb", closefd=False) as out:
            out.write(data)
        os.close(fd)
        fd = -1
        os.replace(temporary, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        temporary.unlink(missing_ok=True)
        raise
