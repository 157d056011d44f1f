"""Envelope files on the platform's disk: appended in place, fsynced, never held in memory.

Each upload is one file, `<upload id>.p7m` in SCELLE_ENVELOPES_DIR, created
0600. The file is the upload's progress: its size is the offset tus
acknowledges, because a PATCH fsyncs what it wrote before it answers. A
request cut short keeps the bytes it received (tus asks servers to), and a
server killed in the middle leaves the bytes the kernel had, each one as the
company sent it: the company resumes from the file's size, and the SHA-256
checked at finalisation catches anything a power cut might have spoilt.
Appending needs no database write, so concurrent deposits do not queue on
the database's single writer.

An exclusive lock on the file keeps two requests from writing the same
upload at once. While the chunks of an upload arrive in order in this
process, their SHA-256 is computed as they are written, so finalisation
need not read the envelope again (`sha256_of`).
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from django.conf import settings

from scelle.core.errors import N_, ChecksumMismatchError, InvalidInputError, RuleViolationError
from scelle.core.files import ensure_private_dir, fsync_dir

PIECE = 1 << 20
RUNNING_HASHES = 4096
"""Uploads whose SHA-256 is kept up to date in memory; the oldest are dropped
(finalisation then reads the file)."""


class BodyStream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _RunningHashes:
    """{file name: (bytes hashed, SHA-256 so far)} for uploads written in order here."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._entries: collections.OrderedDict[str, tuple[int, hashlib._Hash]] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def resume(self, name: str, offset: int) -> hashlib._Hash | None:
        """A hash to continue from `offset` (a copy: the stored one changes only on `keep`)."""
        if offset == 0:
            return hashlib.sha256()
        with self._lock:
            entry = self._entries.get(name)
        return entry[1].copy() if entry is not None and entry[0] == offset else None

    def keep(self, name: str, offset: int, digest: hashlib._Hash) -> None:
        with self._lock:
            self._entries[name] = (offset, digest)
            self._entries.move_to_end(name)
            while len(self._entries) > self._limit:
                self._entries.popitem(last=False)

    def take(self, name: str, size: int) -> str | None:
        """The hex SHA-256 of the first `size` bytes, if known; forgotten either way."""
        with self._lock:
            entry = self._entries.pop(name, None)
        return entry[1].hexdigest() if entry is not None and entry[0] == size else None

    def forget(self, name: str) -> None:
        with self._lock:
            self._entries.pop(name, None)


_running = _RunningHashes(RUNNING_HASHES)

ELSEWHERE = N_("the platform holds {held} bytes of this upload, not {offset}: resume from there")
"""A chunk sent for another offset than the one the upload is at (tus: 409)."""


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


def size_of(name: str) -> int:
    """Bytes the platform holds of an upload: the offset a resume starts from."""
    try:
        return path_of(name).stat().st_size
    except FileNotFoundError:
        raise InvalidInputError(N_("the upload's file is missing on the platform")) from None


class Appender:
    """One tus PATCH being written: `count` bytes at `offset` of the upload `name`,
    which takes `length` bytes in all. The caller feeds `write` with the body as it
    arrives (a thread reading a socket, or the event loop: nothing here blocks for
    long) and ends with `finish`, or `close` when the request ended badly.

    `offset` must be what the file holds; an exclusive lock on the file keeps any
    other request (of this process or another) from writing it meanwhile. With
    `checksum` (algorithm, digest), a chunk whose bytes hash otherwise is cut off
    again and refused (tus checksum).
    """

    def __init__(
        self,
        name: str,
        offset: int,
        count: int,
        *,
        length: int,
        checksum: tuple[str, bytes] | None = None,
    ) -> None:
        self._name = name
        self._start = self._offset = offset
        self._stack = contextlib.ExitStack()
        self._handle = self._stack.enter_context(_locked(path_of(name)))
        try:
            held = os.fstat(self._handle.fileno()).st_size
            if offset != held:
                raise RuleViolationError(
                    ELSEWHERE,
                    held=held,
                    offset=offset,
                )
            if count < 0 or count > length - held:
                raise InvalidInputError(
                    N_("{count} bytes would go past the upload's announced length ({length})"),
                    count=count,
                    length=length,
                )
        except BaseException:
            self._stack.close()
            raise
        self._handle.seek(offset)
        self._checksum = checksum
        self._chunk = hashlib.new(checksum[0]) if checksum else None
        self._running = _running.resume(name, offset)
        self.remaining = count
        """Bytes still expected in this request."""

    def write(self, piece: bytes) -> None:
        """Append a piece of the body (at most `remaining` bytes of it are kept)."""
        piece = piece[: self.remaining]
        if self._chunk is not None:
            self._chunk.update(piece)
        if self._running is not None:
            self._running.update(piece)
        self._handle.write(piece)
        self.remaining -= len(piece)
        self._offset += len(piece)

    def finish(self) -> int:
        """Check the chunk's checksum, fsync, and return the bytes held now (fewer than
        announced when the company went away in the middle: tus keeps them)."""
        try:
            chunk, wanted = self._chunk, self._checksum
            if chunk is not None and wanted is not None and chunk.digest() != wanted[1]:
                self._handle.truncate(self._start)
                raise ChecksumMismatchError(N_("the chunk's checksum does not match its bytes"))
            os.fsync(self._handle.fileno())
            if self._running is not None:
                _running.keep(self._name, self._offset, self._running)
            return self._offset
        finally:
            self.close()

    def close(self) -> None:
        """Release the file; what was written stays (the running hash is forgotten)."""
        self._stack.close()


def fill(appender: Appender, body: BodyStream) -> int:
    """Write what `body` gives into `appender` until its count or the body ends;
    returns the bytes held now."""
    try:
        while appender.remaining:
            piece = body.read(min(PIECE, appender.remaining))
            if not piece:
                break
            appender.write(piece)
    except BaseException:
        appender.close()
        raise
    return appender.finish()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[BinaryIO]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InvalidInputError(N_("the upload's file is missing on the platform")) from None
    handle = os.fdopen(fd, "r+b", buffering=0)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuleViolationError(
                N_("another request is writing this upload right now; try again when it ends")
            ) from None
        yield handle
    finally:
        handle.close()


def sha256_of(name: str, length: int) -> str:
    """SHA-256 of a stored upload of `length` bytes: from the running hash when every
    chunk came in order to this process, else read in pieces. An upload not yet
    complete is refused before anything is read (its running hash kept for the rest)."""
    with _locked(path_of(name)) as handle:  # no append may run meanwhile
        size = os.fstat(handle.fileno()).st_size
        if size != length:
            raise RuleViolationError(
                N_("not fully uploaded yet ({size} of {length} bytes)"), size=size, length=length
            )
        known = _running.take(name, size)
        if known is not None:
            return known
        digest = hashlib.sha256()
        while piece := handle.read(PIECE * 4):
            digest.update(piece)
        return digest.hexdigest()


def last_written(name: str) -> dt.datetime:
    """When the upload's file last received a byte (its creation if never)."""
    try:
        return dt.datetime.fromtimestamp(path_of(name).stat().st_mtime, dt.UTC)
    except FileNotFoundError:
        return dt.datetime.min.replace(tzinfo=dt.UTC)


def held_or_zero(name: str) -> int:
    try:
        return path_of(name).stat().st_size
    except FileNotFoundError:
        return 0


def files() -> Iterator[tuple[str, dt.datetime]]:
    """(name, last written) of every upload and envelope file in the folder."""
    for entry in os.scandir(folder()):
        if entry.name.endswith(".p7m") and entry.is_file(follow_symlinks=False):
            written = dt.datetime.fromtimestamp(entry.stat().st_mtime, dt.UTC)
            yield entry.name, written


@contextlib.contextmanager
def quiet(name: str) -> Iterator[bool]:
    """Hold the upload's lock if no request is writing it (True), else give False at
    once; a missing file is quiet."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(_locked(path_of(name)))
            free = True
        except InvalidInputError:  # missing
            free = True
        except RuleViolationError:  # a request is writing it
            free = False
        yield free


def remove(name: str) -> None:
    _running.forget(name)
    path_of(name).unlink(missing_ok=True)
