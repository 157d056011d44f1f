"""Where envelopes are stored: the platform's folder (the embedded default), or an
S3-compatible object store when SCELLE_STORAGE_URL says so (`objectstore`). Every
function here takes an upload's or envelope's name (`<upload id>.p7m`) and works on
whichever the settings chose; the rest of this docstring is the folder's.

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

import contextlib
import datetime as dt
import fcntl
import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from scelle.core.errors import N_, ChecksumMismatchError, InvalidInputError, RuleViolationError
from scelle.core.files import ensure_private_dir, fsync_dir
from scelle.platform.deposits import objectstore
from scelle.platform.deposits.chunks import (
    MISSING,
    PIECE,
    WRITING,
    Appender,
    BodyStream,
    check_append,
    fill,
    running,
)
from scelle.platform.deposits.objectstore import ObjectStore, StoreUnavailableError

__all__ = [
    "Appender",
    "BodyStream",
    "StoreUnavailableError",
    "appender",
    "check",
    "create",
    "files",
    "fill",
    "held_or_zero",
    "last_written",
    "open_envelope",
    "put_envelope",
    "quiet",
    "remove",
    "retain",
    "retaining",
    "retention_end",
    "sha256_of",
    "size_of",
    "where",
]

_running = running  # the folder's and the store's, one table


def _objects() -> ObjectStore | None:
    """The object store SCELLE_STORAGE_URL names, None for the folder."""
    url = settings.SCELLE_STORAGE_URL
    return objectstore.store_for(url) if url else None


def where() -> str:
    """Where envelopes go, for the operator: the store's URL or the folder."""
    return settings.SCELLE_STORAGE_URL or str(settings.SCELLE_ENVELOPES_DIR)


def check(*, create: bool = False) -> bool:
    """The object store usable (the bucket answers and has Object Lock), else a clear
    error; with `create`, the bucket made first. True when it was made now. The
    folder needs nothing."""
    store = _objects()
    made = False
    if store is not None:
        made = store.create_bucket() if create else False
        store.check()
    return made


def folder() -> Path:
    return ensure_private_dir(Path(settings.SCELLE_ENVELOPES_DIR))


def path_of(name: str) -> Path:
    return folder() / name


def create(name: str) -> None:
    """An empty 0600 file for a new upload, its folder entry made durable (or a
    multipart upload in the store)."""
    if (store := _objects()) is not None:
        return store.create(name)
    target = path_of(name)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    os.close(fd)
    fsync_dir(target.parent)


def size_of(name: str) -> int:
    """Bytes the platform holds of an upload: the offset a resume starts from."""
    if (store := _objects()) is not None:
        return store.held(name)
    try:
        return path_of(name).stat().st_size
    except FileNotFoundError:
        raise InvalidInputError(MISSING) from None


def appender(
    name: str,
    offset: int,
    count: int,
    *,
    length: int,
    checksum: tuple[str, bytes] | None = None,
) -> Appender:
    """A tus PATCH of `count` bytes at `offset` of the upload `name` (`length` bytes in
    all), to be written into (see `chunks.Appender`)."""
    if (store := _objects()) is not None:
        return store.appender(name, offset, count, length=length, checksum=checksum)
    return FileAppender(name, offset, count, length=length, checksum=checksum)


class FileAppender:
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
            check_append(os.fstat(self._handle.fileno()).st_size, offset, count, length)
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


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[BinaryIO]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InvalidInputError(MISSING) from None
    handle = os.fdopen(fd, "r+b", buffering=0)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuleViolationError(WRITING) from None
        yield handle
    finally:
        handle.close()


def sha256_of(name: str, length: int) -> str:
    """SHA-256 of a stored upload of `length` bytes: from the running hash when every
    chunk came in order to this process, else read in pieces. An upload not yet
    complete is refused before anything is read (its running hash kept for the rest).

    In the object store the upload is completed (its tail made the last part); the
    running hash stands for it only when every part is one this process sent (each
    checked by the store against its SHA-256, each tail checked when read back), else
    the object is read back whole."""
    if (store := _objects()) is not None:
        ours = objectstore.locked(name, lambda: store.complete(name, length))
        known = _running.take(name, length)
        return known if ours and known is not None else store.sha256_of(name, length)
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
    if (store := _objects()) is not None:
        return store.last_written(name)
    try:
        return dt.datetime.fromtimestamp(path_of(name).stat().st_mtime, dt.UTC)
    except FileNotFoundError:
        return dt.datetime.min.replace(tzinfo=dt.UTC)


def held_or_zero(name: str) -> int:
    if (store := _objects()) is not None:
        try:
            return store.held(name)
        except InvalidInputError:
            return 0
    try:
        return path_of(name).stat().st_size
    except FileNotFoundError:
        return 0


def files() -> Iterator[tuple[str, dt.datetime]]:
    """(name, last written) of every upload and envelope file in the folder (in the
    store: every envelope, upload in progress and tail)."""
    if (store := _objects()) is not None:
        yield from store.names()
        return
    for entry in os.scandir(folder()):
        if entry.name.endswith(".p7m") and entry.is_file(follow_symlinks=False):
            written = dt.datetime.fromtimestamp(entry.stat().st_mtime, dt.UTC)
            yield entry.name, written


@contextlib.contextmanager
def quiet(name: str) -> Iterator[bool]:
    """Hold the upload's lock if no request is writing it (True), else give False at
    once; a missing file is quiet."""
    if _objects() is not None:
        with objectstore.exclusive(name) as free:
            yield free
        return
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
    """The upload's or envelope's bytes gone (in the store: but for a version under
    retention, which the store keeps)."""
    _running.forget(name)
    if (store := _objects()) is not None:
        store.remove(name)
        (folder() / "locks" / name).unlink(missing_ok=True)
        return
    path_of(name).unlink(missing_ok=True)


def open_envelope(name: str) -> io.BufferedReader:
    """A stored envelope, open for reading at its first byte (seekable); OSError when
    it cannot be read."""
    if (store := _objects()) is not None:
        return store.open(name)
    return path_of(name).open("rb")


def put_envelope(name: str, source: BodyStream, size: int) -> None:
    """A whole envelope of `size` bytes read from `source` (a restore): a new 0600 file
    in the folder, fsynced, or an object in the store; what was written is removed if
    `source` fails or ends early."""
    if (store := _objects()) is not None:
        store.put(name, source, size)
        return
    target = path_of(name)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            left = size
            while left and (piece := source.read(min(PIECE * 4, left))):
                out.write(piece)
                left -= len(piece)
            if left:
                raise InvalidInputError(N_("the envelope {name} is cut short"), name=name)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def retaining() -> bool:
    """Whether envelopes are kept under retention (in an object store)."""
    return _objects() is not None


def retention_end(after: dt.datetime) -> dt.datetime:
    """SCELLE_RETENTION_YEARS after `after` (a 29 February becomes the 28th)."""
    year = after.year + settings.SCELLE_RETENTION_YEARS
    try:
        return after.replace(year=year)
    except ValueError:
        return after.replace(year=year, day=28)


def retain(name: str, until: dt.datetime) -> None:
    """Nobody may delete or change the envelope before `until`: Object Lock retention
    in COMPLIANCE mode in the store, only ever extended. The folder has no such
    guarantee (its operator can delete a file): nothing is done."""
    if (store := _objects()) is not None:
        store.retain(name, until)
