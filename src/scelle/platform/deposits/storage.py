"""Envelope files on the platform's disk: appended in place, fsynced, never held in memory.

Each upload is one file, `<upload id>.p7m` in SCELLE_ENVELOPES_DIR, created
0600. A PATCH appends at the offset the database acknowledges: bytes past it
(written by a request that died before its commit) are cut off first, so
the file and the acknowledged offset always agree. An exclusive lock on the
file keeps two requests from writing the same upload at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from django.conf import settings

from scelle.core.errors import InvalidInputError, RuleViolationError
from scelle.core.files import ensure_private_dir, fsync_dir

PIECE = 1 << 20


class BodyStream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def folder() -> Path:
    return ensure_private_dir(Path(settings.SCELLE_ENVELOPES_DIR))


def path_of(name: str) -> Path:
    return folder() / name


def create(name: str) -> None:
    """An empty 0600 file for a new upload; its folder entry made durable."""
    target = path_of(name)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    os.close(fd)
    fsync_dir(target.parent)


def append(
    name: str,
    offset: int,
    body: BodyStream,
    count: int,
    *,
    check: Callable[[bytes], None] | None = None,
    algorithm: str | None = None,
) -> int:
    """Write `count` bytes of `body` at `offset` of the upload `name`; return how many
    arrived (fewer when the client went away). fsync before returning.

    With `algorithm`, the bytes of this request are hashed and `check` gets
    the raw digest; if it raises, the file is cut back to `offset` (tus checksum).
    """
    with _locked(path_of(name)) as handle:
        handle.truncate(offset)  # drop bytes no commit acknowledged
        handle.seek(offset)
        digest = hashlib.new(algorithm) if algorithm else None
        received = 0
        while received < count:
            piece = body.read(min(PIECE, count - received))
            if not piece:
                break
            if digest is not None:
                digest.update(piece)
            handle.write(piece)
            received += len(piece)
        handle.flush()
        if digest is not None and check is not None:
            try:
                check(digest.digest())
            except BaseException:
                handle.truncate(offset)
                raise
        os.fsync(handle.fileno())
        return received


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[BinaryIO]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InvalidInputError("the upload's file is missing on the platform") from None
    handle = os.fdopen(fd, "r+b", buffering=0)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuleViolationError(
                "another request is writing this upload right now; try again when it ends"
            ) from None
        yield handle
    finally:
        handle.close()


def sha256_of(name: str) -> tuple[int, str]:
    """(size, SHA-256) of a stored file, read in pieces."""
    digest = hashlib.sha256()
    size = 0
    with path_of(name).open("rb", buffering=0) as handle:
        while piece := handle.read(PIECE * 4):
            digest.update(piece)
            size += len(piece)
    return size, digest.hexdigest()


def remove(name: str) -> None:
    path_of(name).unlink(missing_ok=True)
