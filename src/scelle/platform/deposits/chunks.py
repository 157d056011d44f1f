"""What both places an upload can be stored in (`storage`: the folder; `objectstore`: an
S3-compatible store) agree on: a tus PATCH is written through an `Appender`, at the
offset the upload is at, within its announced length, and refused in the same words."""

from __future__ import annotations

import collections
import hashlib
import threading
from typing import Protocol

from scelle.core.errors import N_, InvalidInputError, RuleViolationError

PIECE = 1 << 20
"""Bytes read or hashed at once: memory stays flat whatever the envelope's size."""

ELSEWHERE = N_("the platform holds {held} bytes of this upload, not {offset}: resume from there")
"""A chunk sent for another offset than the one the upload is at (tus: 409)."""

MISSING = N_("the upload's file is missing on the platform")

WRITING = N_("another request is writing this upload right now; try again when it ends")


RUNNING_HASHES = 4096
"""Uploads whose SHA-256 is kept up to date in memory; the oldest are dropped
(finalisation then reads the file)."""


class RunningHashes:
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


running = RunningHashes(RUNNING_HASHES)


class BodyStream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Appender(Protocol):
    """One tus PATCH being stored. The caller feeds `write` with the body as it arrives
    (a thread reading a socket, or the event loop: `write` never waits on the network)
    and ends with `finish`, which gives the bytes held now, or `close` when the request
    ended badly."""

    remaining: int
    """Bytes still expected in this request."""

    def write(self, piece: bytes) -> None: ...

    def finish(self) -> int: ...

    def close(self) -> None: ...


def check_append(held: int, offset: int, count: int, length: int) -> None:
    """A chunk of `count` bytes at `offset` of an upload of `length` bytes that holds
    `held`: refused unless it starts where the upload is and stays within its length."""
    if offset != held:
        raise RuleViolationError(ELSEWHERE, held=held, offset=offset)
    if count < 0 or count > length - held:
        raise InvalidInputError(
            N_("{count} bytes would go past the upload's announced length ({length})"),
            count=count,
            length=length,
        )


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
