"""Envelopes in an S3-compatible object store (SCELLE_STORAGE_URL=s3://bucket/prefix),
so that several application hosts share them and the store itself refuses to delete
one before its retention ends.

Under the prefix, for an upload `<name>` (`<upload id>.p7m`):

- `<name>` is the envelope. While it is being uploaded it is an S3 multipart upload
  to that key: each part holds at least `PART_MIN` bytes (S3's least but for the
  last one), sent with its SHA-256, which the store checks as it arrives;
- `tails/<name>.<parts>.<end>.<sha256>` holds the bytes received after the first
  `<parts>` parts, up to offset `<end>`, while they are too few for a part; its name
  says the SHA-256 it was written with, checked whenever it is read back (a tail
  changed in the store makes the upload refused). Only the tail whose `<parts>` and
  `<end>` agree with the parts is the upload's: a tail left by a request cut between
  writing a part and removing the tail is ignored, and removed.

So what the upload holds is read from the store (the parts, then the tail), and any
host can take any chunk of any upload: the offset a HEAD gives is the same on every
host, and a host killed in the middle of a chunk leaves the upload as it was before
that chunk. A chunk's bytes are spooled to a local temporary file as they arrive
(the event loop never waits on the store), then stored as a part or as the new tail
while the upload is locked: by a PostgreSQL advisory lock, which a dead host's
connection releases, or with SQLite (one host) a lock file in SCELLE_ENVELOPES_DIR.

Finalisation (`complete`) stores the tail as the last part and completes the upload.
The receipt's SHA-256 is what the store holds: when every chunk came in order to this
process and every part the store lists is one it sent (the ETags it was answered),
the SHA-256 computed as the bytes arrived is the object's (each part checked by the
store against it, each tail checked when read back); otherwise (chunks taken by
several hosts, a part sent by someone else) the object is read back whole.

`retain` puts an envelope under Object Lock retention in COMPLIANCE mode: until that
date nobody, the bucket's owner included, can delete or overwrite it.
The bucket must be created with Object Lock (`scelle admin storage create`).

Every failure of the store (down, refusing, answering nonsense) is a
`StoreUnavailableError`: the request is answered 503, and nothing is recorded.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import io
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection

from scelle.core.errors import N_, ChecksumMismatchError, InvalidInputError, RuleViolationError
from scelle.core.files import ensure_private_dir
from scelle.platform.deposits.chunks import (
    MISSING,
    PIECE,
    WRITING,
    BodyStream,
    check_append,
    running,
)

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.response import StreamingBody

PART_MIN = 5 << 20
"""S3's smallest part (but for the last one)."""

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_V = TypeVar("_V")
_TAIL = re.compile(r"\.(\d{1,5})\.(\d{1,20})\.([0-9a-f]{64})$")


DAMAGED = N_(
    "the upload the platform holds was changed in the store (its SHA-256 differs from what "
    "arrived): abandon it and deposit again"
)


class StoreUnavailableError(OSError):
    """The object store failed or could not be reached: nothing was stored (HTTP 503)."""


@dataclass(frozen=True)
class _Tail:
    key: str
    parts: int
    end: int
    sha256: str
    """The SHA-256 of what was written, in its name: a tail changed behind the platform's
    back is found when it is read again."""
    size: int
    written: dt.datetime


@dataclass
class _State:
    """What the store holds of one upload."""

    upload_id: str | None
    """The multipart upload's id; None once completed (or never made)."""
    parts: list[dict[str, Any]] = field(default_factory=list)
    tail: _Tail | None = None
    stale: list[str] = field(default_factory=list)
    """Tails that are not the upload's any more (a request cut short left them)."""
    initiated: dt.datetime | None = None
    resent: bool = False
    """A part number the store lists twice: sent again, by whoever."""

    @property
    def in_parts(self) -> int:
        return sum(int(part["Size"]) for part in self.parts)

    @property
    def held(self) -> int:
        return self.in_parts + (self.tail.size if self.tail else 0)

    @property
    def written(self) -> dt.datetime | None:
        times = [part["LastModified"] for part in self.parts]
        times += [self.tail.written] if self.tail else []
        times += [self.initiated] if self.initiated else []
        return max(times, default=None)


def parse_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of `s3://bucket/prefix`; the prefix ends with "/" unless empty."""
    parts = urlsplit(url)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if parts.scheme != "s3" or not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise InvalidInputError(
            N_("SCELLE_STORAGE_URL must be s3://bucket/prefix (a valid bucket name): {url}"),
            url=url,
        )
    return bucket, f"{prefix}/" if prefix else ""


class ObjectStore:
    """The envelopes of one bucket and prefix; one boto3 client per process."""

    def __init__(self, url: str) -> None:
        self.bucket, self.prefix = parse_url(url)
        self._client: BaseClient | None = None
        self._pid = 0
        self._ids: dict[str, str] = {}
        self._etags: dict[str, dict[int, str]] = {}
        """{upload: {part number: ETag}} of the parts this process sent."""
        self._stored: dict[str, int] = {}
        """{upload: bytes held} after the last chunk this process stored."""
        self._lock = threading.Lock()

    # --- the client ----------------------------------------------------------------

    @property
    def client(self) -> BaseClient:
        """boto3's S3 client: endpoint, region and credentials from the standard AWS
        variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...). Made again in a forked
        serving process (a client's connections are not shared across a fork)."""
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                import boto3
                from botocore.config import Config

                self._client = boto3.session.Session().client(
                    "s3",
                    region_name=os.environ.get("AWS_REGION")
                    or os.environ.get("AWS_DEFAULT_REGION")
                    or "us-east-1",
                    config=Config(
                        # Our own SHA-256 per part; no CRC added to every request.
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required",
                        retries={"mode": "standard", "max_attempts": 3},
                        max_pool_connections=64,
                        connect_timeout=5,
                        read_timeout=int(os.environ.get("SCELLE_STORE_TIMEOUT", "60")),
                    ),
                )
                self._pid = os.getpid()
                self._ids.clear()
            return self._client

    def call(self, operation: str, **arguments: object) -> dict[str, Any]:
        """One request to the store; any failure a StoreUnavailableError (a missing key
        or upload is `_Missing`)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer: dict[str, Any] = getattr(self.client, operation)(
                Bucket=self.bucket, **arguments
            )
            return answer
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_CODES:
                raise _Missing(code) from None
            _log.warning("object store: %s refused: %s", operation, error)
            raise StoreUnavailableError(f"the object store refused {operation}: {code}") from None
        except BotoCoreError as error:
            _log.warning("object store: %s failed: %s", operation, error)
            raise StoreUnavailableError(f"the object store failed {operation}") from None

    def _pages(self, operation: str, items: str, **arguments: object) -> Iterator[dict[str, Any]]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            pages = self.client.get_paginator(operation).paginate(Bucket=self.bucket, **arguments)
            for page in pages:
                yield from page.get(items, [])
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchUpload":
                raise _Missing(code) from None
            raise StoreUnavailableError(f"the object store refused {operation}: {code}") from None
        except BotoCoreError:
            raise StoreUnavailableError(f"the object store failed {operation}") from None

    # --- the bucket ------------------------------------------------------------------

    def check(self) -> None:
        """The bucket answers and has Object Lock; else a clear error at start-up."""
        try:
            answer = self.call("get_object_lock_configuration")
        except (_Missing, StoreUnavailableError):
            raise InvalidInputError(
                N_(
                    "the bucket {bucket} of SCELLE_STORAGE_URL cannot be used: it is missing, "
                    "unreachable (AWS_ENDPOINT_URL) or without Object Lock"
                ),
                hint=N_("Create it with `scelle admin storage create`."),
                bucket=self.bucket,
            ) from None
        enabled = answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
        if enabled != "Enabled":
            raise InvalidInputError(
                N_("the bucket {bucket} has no Object Lock: envelopes could be deleted"),
                bucket=self.bucket,
            )

    def create_bucket(self) -> bool:
        """Create the bucket with Object Lock (which needs versioning); False if it was
        there already."""
        try:
            self.call("head_bucket")
            return False
        except _Missing:
            self.call("create_bucket", ObjectLockEnabledForBucket=True)
            return True

    # --- uploads ---------------------------------------------------------------------

    def key(self, name: str) -> str:
        return self.prefix + name

    def _tails_of(self, name: str) -> str:
        return f"{self.prefix}tails/{name}."

    def create(self, name: str) -> None:
        answer = self.call(
            "create_multipart_upload", Key=self.key(name), ContentType="application/pkcs7-mime"
        )
        with self._lock:
            _keep(self._ids, name, str(answer["UploadId"]))

    def _upload_id(self, name: str) -> tuple[str | None, dt.datetime | None]:
        with self._lock:
            known = self._ids.get(name)
        if known is not None:
            return known, None
        key = self.key(name)
        found = [u for u in self._pages("list_multipart_uploads", "Uploads", Prefix=key)]
        found = sorted((u for u in found if u["Key"] == key), key=lambda u: u["Initiated"])
        if not found:
            return None, None
        with self._lock:
            _keep(self._ids, name, str(found[0]["UploadId"]))
        return str(found[0]["UploadId"]), found[0]["Initiated"]

    def state(self, name: str) -> _State:
        """Parts and tail of an upload in progress (None upload id once completed)."""
        upload_id, initiated = self._upload_id(name)
        state = _State(upload_id, initiated=initiated)
        if upload_id is not None:
            try:
                # A part number sent twice counts once: its last upload (S3's rule).
                latest: dict[int, dict[str, Any]] = {}
                for part in self._pages(
                    "list_parts", "Parts", Key=self.key(name), UploadId=upload_id
                ):
                    number = int(part["PartNumber"])
                    state.resent |= number in latest
                    if (
                        number not in latest
                        or part["LastModified"] >= latest[number]["LastModified"]
                    ):
                        latest[number] = part
                state.parts = [latest[number] for number in sorted(latest)]
            except _Missing:  # completed or aborted meanwhile
                with self._lock:
                    self._ids.pop(name, None)
                state.upload_id = None
        if [int(p["PartNumber"]) for p in state.parts] != list(range(1, len(state.parts) + 1)):
            raise StoreUnavailableError(f"the parts of {name} are not numbered 1 to n")
        tails = []
        for item in self._pages("list_objects_v2", "Contents", Prefix=self._tails_of(name)):
            match = _TAIL.search(item["Key"])
            if match:
                tails.append(
                    _Tail(item["Key"], int(match[1]), int(match[2]), match[3],
                          int(item["Size"]), item["LastModified"])
                )  # fmt: skip
        live = [
            t
            for t in tails
            if state.upload_id is not None
            and t.parts == len(state.parts)
            and t.end == state.in_parts + t.size
        ]
        state.tail = max(live, key=lambda t: t.end, default=None)
        state.stale = [t.key for t in tails if t != state.tail]
        return state

    def held(self, name: str) -> int:
        """Bytes held of an upload (a completed one: its object's size)."""
        state = self.state(name)
        if state.upload_id is not None:
            return state.held
        try:
            return int(self.call("head_object", Key=self.key(name))["ContentLength"])
        except _Missing:
            raise InvalidInputError(MISSING) from None

    def held_before(self, name: str, offset: int) -> int:
        """The bytes held of an upload, as a PATCH at `offset` is checked before its body
        is read: what this process stored last when that is `offset` (a company sending
        its chunks in turn to one host: no listing), else the store's. `append` checks
        against the store again, under the upload's lock, before storing anything."""
        with self._lock:
            known = self._stored.get(name)
        return offset if known == offset else self.held(name)

    def appender(
        self,
        name: str,
        offset: int,
        count: int,
        *,
        length: int,
        checksum: tuple[str, bytes] | None,
    ) -> ObjectAppender:
        return ObjectAppender(self, name, offset, count, length=length, checksum=checksum)

    def append(
        self, name: str, start: int, spool: IO[bytes], size: int, digest: hashlib._Hash
    ) -> int:
        """Store `size` bytes (in `spool`, whose SHA-256 so far is `digest`) at `start`, as
        a part or as the new tail; the bytes held now. The caller holds the upload's
        lock."""
        state = self.state(name)
        if state.upload_id is None:
            raise InvalidInputError(MISSING)
        check_append(state.held, start, size, start + size)
        tail = state.tail
        with tempfile.TemporaryFile() as joined:
            sha256: hashlib._Hash | None = digest  # the spool's, hashed as it arrived
            if tail is not None:  # the tail first, then the new bytes: one piece
                self._download_tail(tail, joined)
                spool.seek(0)
                shutil.copyfileobj(spool, joined, PIECE)
                body: IO[bytes] = joined
                sha256 = None
            else:
                body = spool
            total = (tail.size if tail else 0) + size
            end = start + size
            sent = _body(body, total, sha256)
            if total >= PART_MIN:
                self._put_part(name, state.upload_id, len(state.parts) + 1, sent)
            else:
                key = f"{self._tails_of(name)}{len(state.parts)}.{end}.{sent['sha256']}"
                self.call("put_object", Key=key, **sent["request"])
        for key in [*state.stale, *([tail.key] if tail else [])]:
            self.purge(key)
        with self._lock:
            _keep(self._stored, name, end)
        return end

    def complete(self, name: str, length: int) -> bool:
        """Make the upload one object: the tail as its last part, then completed. One
        already completed is left as it is. The caller holds the upload's lock.

        True when every part is one this process sent (the ETags the store lists are
        the ones it answered): the object is then exactly the bytes this process
        received, each part's SHA-256 checked by the store as it arrived."""
        state = self.state(name)
        if state.upload_id is None:
            if self.held(name) != length:
                raise InvalidInputError(MISSING)
            return False
        if state.held != length:
            raise RuleViolationError(
                N_("not fully uploaded yet ({size} of {length} bytes)"),
                size=state.held,
                length=length,
            )
        parts = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in state.parts]
        with self._lock:
            sent_here = self._etags.pop(name, {})
        ours = not state.resent and all(
            sent_here.get(int(p["PartNumber"])) == p["ETag"] for p in parts
        )
        if state.tail is not None or not parts:
            with tempfile.TemporaryFile() as last:
                size = self._download_tail(state.tail, last) if state.tail else 0
                sent = _body(last, size)
                etag = self._put_part(name, state.upload_id, len(parts) + 1, sent)
            parts.append({"PartNumber": len(parts) + 1, "ETag": etag})
        self.call(
            "complete_multipart_upload",
            Key=self.key(name),
            UploadId=state.upload_id,
            MultipartUpload={"Parts": parts},
        )
        with self._lock:
            self._ids.pop(name, None)
            self._stored.pop(name, None)
        for key in [*state.stale, *([state.tail.key] if state.tail else [])]:
            self.purge(key)
        return ours

    def sha256_of(self, name: str, length: int) -> str:
        """The SHA-256 of the completed object, read back whole; its size must be `length`."""
        digest, size = hashlib.sha256(), 0
        with self.open(name) as handle:
            while piece := handle.read(PIECE * 4):
                digest.update(piece)
                size += len(piece)
        if size != length:
            raise StoreUnavailableError(f"the object store holds {size} bytes of {name}")
        return digest.hexdigest()

    def _put_part(self, name: str, upload_id: str, number: int, sent: dict[str, Any]) -> str:
        answer = self.call(
            "upload_part",
            Key=self.key(name),
            UploadId=upload_id,
            PartNumber=number,
            **sent["request"],
        )
        etag = str(answer["ETag"])
        with self._lock:
            _keep(self._etags, name, {**self._etags.get(name, {}), number: etag})
        return etag

    def _download_tail(self, tail: _Tail, into: IO[bytes]) -> int:
        """A tail's bytes into `into`, which must hash as its name says: else the upload
        is damaged (changed in the store), and refused."""
        answer = self.call("get_object", Key=tail.key)
        size, digest = 0, hashlib.sha256()
        with contextlib.closing(answer["Body"]) as stream:
            while piece := _read(stream, PIECE):
                into.write(piece)
                digest.update(piece)
                size += len(piece)
        if digest.hexdigest() != tail.sha256 or size != tail.size:
            raise RuleViolationError(DAMAGED)
        return size

    # --- envelopes ---------------------------------------------------------------------

    def open(self, name: str) -> io.BufferedReader:
        """The stored envelope, read piece by piece from the store (FileNotFoundError when
        it is not there)."""
        try:
            head = self.call("head_object", Key=self.key(name))
        except _Missing:
            raise FileNotFoundError(name) from None
        raw = _ObjectReader(self, self.key(name), int(head["ContentLength"]))
        return io.BufferedReader(raw, PIECE)

    def put(self, name: str, source: BodyStream, size: int) -> None:
        """A whole envelope read from `source` (a restore), by boto3's managed multipart
        upload: memory stays bounded whatever its size."""
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.upload_fileobj(
                source, self.bucket, self.key(name),
                Config=TransferConfig(multipart_chunksize=PART_MIN * 4, max_concurrency=4),
            )  # fmt: skip
        except (BotoCoreError, ClientError) as error:
            raise StoreUnavailableError(f"the object store refused {name}: {error}") from None
        if self.held(name) != size:
            self.remove(name)
            raise InvalidInputError(N_("the envelope {name} is cut short"), name=name)

    def retain(self, name: str, until: dt.datetime) -> None:
        """Object Lock retention in COMPLIANCE mode until `until` (only ever extended)."""
        key = self.key(name)
        with contextlib.suppress(_Missing):
            current = self.call("get_object_retention", Key=key).get("Retention", {})
            if current.get("RetainUntilDate") and current["RetainUntilDate"] >= until:
                return
        self.call(
            "put_object_retention",
            Key=key,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until},
        )

    def retained_until(self, name: str) -> dt.datetime | None:
        try:
            found = self.call("get_object_retention", Key=self.key(name))
        except (_Missing, StoreUnavailableError):
            return None
        until = found.get("Retention", {}).get("RetainUntilDate")
        return until if isinstance(until, dt.datetime) else None

    def names(self) -> Iterator[tuple[str, dt.datetime]]:
        """(name, last written) of every envelope, upload in progress and tail."""
        tails = self.prefix + "tails/"
        seen: dict[str, dt.datetime] = {}

        def saw(name: str, when: dt.datetime) -> None:
            if name.endswith(".p7m") and "/" not in name:
                seen[name] = max(when, seen.get(name, when))

        for item in self._pages("list_object_versions", "Versions", Prefix=self.prefix):
            if item["Key"].startswith(tails):
                saw(_TAIL.sub("", item["Key"][len(tails) :]), item["LastModified"])
            else:
                saw(item["Key"][len(self.prefix) :], item["LastModified"])
        for upload in self._pages("list_multipart_uploads", "Uploads", Prefix=self.prefix):
            saw(upload["Key"][len(self.prefix) :], upload["Initiated"])
        yield from seen.items()

    def last_written(self, name: str) -> dt.datetime:
        state = self.state(name)
        if state.upload_id is None:
            with contextlib.suppress(_Missing):
                return self.call("head_object", Key=self.key(name))["LastModified"]  # type: ignore[no-any-return]
        return state.written or dt.datetime.min.replace(tzinfo=dt.UTC)

    def remove(self, name: str) -> None:
        """Abort the upload, remove its tails and every version of its object; a version
        under retention stays (the store refuses), and is logged."""
        key = self.key(name)
        for upload in self._pages("list_multipart_uploads", "Uploads", Prefix=key):
            if upload["Key"] == key:
                with contextlib.suppress(_Missing):
                    self.call("abort_multipart_upload", Key=key, UploadId=upload["UploadId"])
        with self._lock:
            self._ids.pop(name, None)
            self._stored.pop(name, None)
        for item in self._pages("list_objects_v2", "Contents", Prefix=self._tails_of(name)):
            self.purge(item["Key"])
        try:
            self.purge(key)
        except StoreUnavailableError:
            _log.warning("object store: %s kept (under retention?)", key)

    def purge(self, key: str) -> None:
        """Every version and delete marker of one key."""
        for kind in ("Versions", "DeleteMarkers"):
            for item in self._pages("list_object_versions", kind, Prefix=key):
                if item["Key"] == key:
                    with contextlib.suppress(_Missing):
                        self.call("delete_object", Key=key, VersionId=item["VersionId"])


class _Missing(Exception):
    """The store has no such key, upload or retention."""


_MISSING_CODES = {
    "NoSuchKey", "NoSuchUpload", "404", "NotFound", "NoSuchBucket",
    "NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError",
}  # fmt: skip


def _body(body: IO[bytes], size: int, digest: hashlib._Hash | None = None) -> dict[str, Any]:
    """{"request": a request body with its length and SHA-256, which the store checks
    (BadDigest); "sha256": that SHA-256 in hex}. `digest` is the body's, else it is read
    here."""
    if digest is None:
        digest = hashlib.sha256()
        body.seek(0)
        while piece := body.read(PIECE):
            digest.update(piece)
    body.seek(0)
    request = {
        "Body": body,
        "ContentLength": size,
        "ChecksumSHA256": base64.b64encode(digest.digest()).decode(),
    }
    return {"request": request, "sha256": digest.hexdigest()}


def _read(stream: StreamingBody, size: int) -> bytes:
    from botocore.exceptions import BotoCoreError

    try:
        piece: bytes = stream.read(size)
        return piece
    except (BotoCoreError, OSError):
        raise StoreUnavailableError("the object store stopped sending") from None


class _ObjectReader(io.RawIOBase):
    """An object read with ranged GETs: seekable, so a download resumes at any byte."""

    def __init__(self, store: ObjectStore, key: str, size: int) -> None:
        self._store, self._key, self._size = store, key, size
        self._position = 0
        self._stream: StreamingBody | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        position = max(0, base + offset)
        if position != self._position:
            self._drop()
        self._position = position
        return position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._position >= self._size:
            return 0
        if self._stream is None:
            answer = self._store.call("get_object", Key=self._key, Range=f"bytes={self._position}-")
            self._stream = answer["Body"]
        piece = _read(self._stream, len(buffer))
        if not piece:
            raise StoreUnavailableError("the object store sent less than the object's size")
        buffer[: len(piece)] = piece
        self._position += len(piece)
        return len(piece)

    def _drop(self) -> None:
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.close()
            self._stream = None

    def close(self) -> None:
        self._drop()
        super().close()


class ObjectAppender:
    """A tus PATCH to an upload in the store: its bytes spooled to a local temporary
    file as they arrive, then stored, upload locked, by `finish`."""

    def __init__(
        self,
        store: ObjectStore,
        name: str,
        offset: int,
        count: int,
        *,
        length: int,
        checksum: tuple[str, bytes] | None,
    ) -> None:
        check_append(store.held_before(name, offset), offset, count, length)
        self._store, self._name, self._start = store, name, offset
        self._checksum = checksum
        self._chunk = hashlib.new(checksum[0]) if checksum else None
        self._spool: IO[bytes] | None = tempfile.TemporaryFile()  # noqa: SIM115 (closed by finish or close)
        self._sha256 = hashlib.sha256()
        self._running = running.resume(name, offset)
        self._size = 0
        self.remaining = count

    def write(self, piece: bytes) -> None:
        piece = piece[: self.remaining]
        if self._spool is None:
            raise InvalidInputError(MISSING)
        if self._chunk is not None:
            self._chunk.update(piece)
        self._spool.write(piece)
        self._sha256.update(piece)
        if self._running is not None:
            self._running.update(piece)
        self.remaining -= len(piece)
        self._size += len(piece)

    def finish(self) -> int:
        """Check the chunk's checksum, store its bytes, give the bytes held now."""
        try:
            chunk, wanted = self._chunk, self._checksum
            if chunk is not None and wanted is not None and chunk.digest() != wanted[1]:
                raise ChecksumMismatchError(N_("the chunk's checksum does not match its bytes"))
            if self._size == 0 or self._spool is None:
                return self._start
            if not connection.in_atomic_block:  # a pool thread's connection may be stale
                connection.close_if_unusable_or_obsolete()
            spool, digest = self._spool, self._sha256

            def store() -> int:
                return self._store.append(self._name, self._start, spool, self._size, digest)

            held = locked(self._name, store)
            if self._running is not None:
                running.keep(self._name, held, self._running)
            return held
        finally:
            self.close()

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None


def _keep(cache: dict[str, _V], name: str, value: _V) -> None:
    """`cache[name] = value`, the cache bounded (its oldest entries go); under the lock."""
    cache.pop(name, None)
    cache[name] = value
    while len(cache) > 4096:
        cache.pop(next(iter(cache)))


def locked(name: str, work: Callable[[], _T]) -> _T:
    """`work` done while no other request of any host works on the upload `name`."""
    with exclusive(name) as free:
        if not free:
            raise RuleViolationError(WRITING)
        return work()


@contextlib.contextmanager
def exclusive(name: str) -> Iterator[bool]:
    """The upload's lock if it is free (True), else False at once. On PostgreSQL an
    advisory lock of the connection's session, released at the end (whatever
    transaction is open meanwhile): a host that dies holding it loses its
    connection, and the lock with it. With SQLite, one host: a lock file."""
    if connection.vendor == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            row = cursor.fetchone()
        free = bool(row and row[0])
        try:
            yield free
        finally:
            if free:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    folder = ensure_private_dir(settings.SCELLE_ENVELOPES_DIR / "locks")
    fd = os.open(folder / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            free = True
        except BlockingIOError:
            free = False
        yield free
    finally:
        os.close(fd)


_stores: dict[str, ObjectStore] = {}


def store_for(url: str) -> ObjectStore:
    """The store of SCELLE_STORAGE_URL (one per URL, per process)."""
    found = _stores.get(url)
    if found is None:
        found = _stores.setdefault(url, ObjectStore(url))
    return found
