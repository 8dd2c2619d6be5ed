"""State files: replaced durably and atomically, private whatever the umask, never through a
planted link; and a warning for secrets others can read."""

import contextlib
import logging
import os
import secrets
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


def read_bounded(path: Path, limit: int) -> bytes | None:
    """The bytes of `path`, or None when it holds more than `limit` (never read beyond that);
    OSError as opening or reading raises it."""
    with path.open("rb") as stream:
        data = stream.read(limit + 1)
    return data if len(data) <= limit else None


def write_atomically(
    path: Path, data: bytes, mode: int = FILE_MODE, owner: tuple[int, int] | None = None
) -> None:
    """Write a fresh file beside `path`, sync, rename over it, sync the directory; OSError on
    failure. A crash leaves the old file or the new, never half.

    The temporary file is created exclusively under a random name (a link planted in the
    directory is never followed) and given `mode` (and `owner`, (uid, gid), when given: a
    file edited by root keeps the group that lets the service read it) before anything is
    written, whatever the umask. Missing directories are made private.
    """
    _place(path, data, mode, os.replace, owner)
    sync_directory(path.parent)


def create_exclusively(path: Path, data: bytes, mode: int = FILE_MODE) -> bool:
    """As `write_atomically`, but never replacing: False (and nothing written) when `path`
    exists already, so two processes creating the same key keep the first one's."""
    try:
        _place(path, data, mode, os.link)
    except FileExistsError:
        return False
    sync_directory(path.parent)
    return True


def _place(
    path: Path,
    data: bytes,
    mode: int,
    put: Callable[[Path, Path], None],
    owner: tuple[int, int] | None = None,
) -> None:
    """Write `data` to a fresh private temporary beside `path`, synced, then `put` it at
    `path`; the temporary never outlives the call."""
    make_private_directory(path.parent)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as file:
            if owner is not None:
                os.fchown(file.fileno(), *owner)
            os.fchmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        put(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def link_atomically(path: Path, target: str) -> None:
    """Point the symbolic link `path` at `target` in one step: a new link under a fresh name
    (never an existing one) renamed over it, then the directory synced."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    os.symlink(target, temporary)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def create_private_file(path: Path) -> None:
    """Create `path` empty with FILE_MODE whatever the umask, unless it exists: for files a
    library creates with the umask's mode (SQLite gives its WAL the database file's mode)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(descriptor, FILE_MODE)
    finally:
        os.close(descriptor)


def make_private_directory(directory: Path) -> None:
    """Create `directory` and its missing parents 0700 whatever the umask; existing ones are
    left as they are (the service manager may have made the state directory 0750)."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for made in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another thread
            made.mkdir(DIRECTORY_MODE)
            os.chmod(made, DIRECTORY_MODE)


def sync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def warn_if_readable_by_others(path: Path) -> bool:
    """Log a warning when users other than the owner and its group can read the secret at
    `path` (a key or password file); True when it did. A file that cannot be examined is
    left to the reader that opens it next."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    if not mode & stat.S_IROTH:
        return False
    log.warning(
        "%s is readable by other users (mode %04o): a secret should be 0600 (chmod 600 %s)",
        path,
        stat.S_IMODE(mode),
        path,
    )
    return True
