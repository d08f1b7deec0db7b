"""Files only their owner may read: the embedded database and the secrets `xkit dev` keeps beside it.

Each is created with owner-only permissions from the start (no moment where it is readable by others,
whatever the umask), and tightened when found looser (made by an older version, copied in, or umask 022).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600
# SQLite gives its -wal, -shm and rollback journal the permissions of the database file when it creates
# them; ones left by an earlier, looser run are tightened with the database.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def _tighten(path: Path, mode: int) -> None:
    if stat.S_IMODE(path.stat().st_mode) & ~mode:
        path.chmod(mode)


def private_directory(path: Path) -> Path:
    """`path` as a folder only its owner can list or enter (missing parents get the usual permissions)."""
    path.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    _tighten(path, PRIVATE_DIRECTORY)
    return path


def private_file(path: Path) -> Path:
    """`path` as an existing file only its owner can read or write, created empty if missing."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        _tighten(path, PRIVATE_FILE)
    return path


def read_or_create_private_text(path: Path, make: str) -> str:
    """The text of an owner-only file, which is first written with `make` when it does not exist."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        _tighten(path, PRIVATE_FILE)
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(make + "\n")
    return make


def private_sqlite_database(path: Path) -> None:
    """A database file (and its WAL, shared-memory and journal files) that only the owner can read; a
    missing folder for it is created owner-only, an existing one is left as the operator made it."""
    if not path.parent.exists():
        path.parent.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    private_file(path)
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            _tighten(companion, PRIVATE_FILE)
