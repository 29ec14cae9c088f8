"""All-or-nothing replacement of the output repository, under a lock.

A build writes a complete new repository into a staging folder beside the
output, then exchanges the two folders in one atomic step (Linux
renameat2 RENAME_EXCHANGE); the old tree is deleted afterwards. Where that
call is missing, two renames are used and a journal lets the next build
restore the old tree if we died in between. A second build on the same
output waits for the lock instead of interleaving with the first.

    with RepositoryLock(output):
        staging = new_staging(output)
        ... write into staging ...
        replace(output, staging)
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from compiler.errors import Problem, RepositoryError
from compiler.repository.layout import sidecar

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class RepositoryLock:
    """One build of a repository at a time. `waiting` is told once when another process holds the lock, before
    this one waits for it (the build says so: a second `make repo` that seems to hang is waiting)."""

    def __init__(self, output: Path, waiting: Callable[[str], None] = lambda _: None) -> None:
        self.output = output
        self.path = sidecar(output, "lock")
        self.waiting = waiting
        self._fd: int | None = None

    def __enter__(self) -> RepositoryLock:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.waiting(f"waiting for {self.path}: another build of {self.output} holds it")
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as err:
            raise RepositoryError(Problem(f"cannot lock {self.path}: {err}")) from err
        recover(self.output)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def new_staging(output: Path) -> Path:
    staging = Path(tempfile.mkdtemp(prefix=sidecar(output, "staging-").name, dir=output.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a repository is read by tritonserver, maybe as another user
    return staging


def discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise RepositoryError(Problem(f"cannot swap {a} and {b}: {os.strerror(code)}"))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace(output: Path, staging: Path) -> None:
    """Make `staging` the output; the previous output is removed."""
    _fsync_dir(staging)
    if not output.exists():
        os.rename(staging, output)
        _fsync_dir(output.parent)
        return
    if _exchange(staging, output):
        _fsync_dir(output.parent)
        discard(staging)  # now holds the previous tree
        return
    previous = sidecar(output, "previous")
    journal = sidecar(output, "journal")
    journal.write_text(str(previous))
    os.rename(output, previous)
    os.rename(staging, output)
    _fsync_dir(output.parent)
    journal.unlink()
    discard(previous)


def recover(output: Path) -> None:
    """Undo a half-finished two-rename swap and drop stale staging folders (lock held)."""
    journal = sidecar(output, "journal")
    previous = sidecar(output, "previous")
    if journal.exists():
        if not output.exists() and previous.exists():
            os.rename(previous, output)
        journal.unlink()
    if previous.exists() and output.exists():
        discard(previous)
    for stale in output.parent.glob(sidecar(output, "staging-").name + "*"):
        discard(stale)
