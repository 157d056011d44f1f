"""What an envelope holds: a ZIP archive (stored, ZIP64 when needed) led by its manifest.

Packing is deterministic, so that an interrupted deposit can re-create the
very same bytes (DESIGN.md, Deposit flow): files are sorted by name, dated
1980-01-01, and written with their sizes and CRC-32 in the local headers, no
data descriptors. It takes two passes: the first hashes every file for the
manifest (SHA-256) and the ZIP headers (CRC-32), which also gives the
archive's exact size before a byte is written; the second streams the files
and checks that none changed in between.

Opening refuses anything the manifest does not describe exactly: absolute
names, `..`, backslashes, links, duplicates, compressed or extra entries,
sizes or hashes that differ. Files appear in the target folder only once
every one has been checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import struct
import tempfile
import unicodedata
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from scelle.core.errors import N_, ArchiveError, InvalidInputError
from scelle.core.files import Readable, Writable, write_all

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "scelle-envelope/1"
MAX_MANIFEST_BYTES = 16 << 20
MAX_NAME_BYTES = 1024
MAX_FILES = 20_000
"""Files one envelope may hold: far more than any offer, few enough that a hostile one
cannot fill a workstation's disk with empty files or hold the opening for long."""
READ_SIZE = 1 << 20

_ZIP32_LIMIT = 0xFFFFFFFF
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01, the earliest a ZIP can say
_DOS_TIME = 0
_UTF8_NAMES = 0x0800
_VERSION_ZIP32 = 20
_VERSION_ZIP64 = 45
_MADE_BY_UNIX = 3 << 8
_REGULAR_FILE = (stat.S_IFREG | 0o644) << 16

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ManifestFile:
    """One file of an envelope, as the manifest lists it."""

    name: str
    """Path inside the envelope, POSIX separators, never absolute, never `..`."""
    size: int
    sha256: str
    """Lower-case hex."""


@dataclass(frozen=True)
class Manifest:
    """The first member of every envelope: what it is for and what it holds."""

    tender: str
    """The tender's reference."""
    envelope: str
    """The envelope kind: candidature, offre, anonymat."""
    bidder: str
    """The bidding company's name."""
    files: tuple[ManifestFile, ...]

    def to_json(self) -> bytes:
        document = {
            "format": MANIFEST_FORMAT,
            "tender": self.tender,
            "envelope": self.envelope,
            "bidder": self.bidder,
            "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in self.files],
        }
        return json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        try:
            document = json.loads(data.decode("utf-8"))
            if document["format"] != MANIFEST_FORMAT:
                raise ArchiveError(
                    N_("unknown envelope format {format!r}"),
                    format=document["format"],
                )
            files = tuple(
                ManifestFile(str(f["name"]), int(f["size"]), str(f["sha256"]))
                for f in document["files"]
            )
            manifest = cls(
                str(document["tender"]), str(document["envelope"]), str(document["bidder"]), files
            )
        except ArchiveError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
            raise ArchiveError(
                N_("the envelope's manifest is damaged"),
            ) from None
        seen: set[str] = set()
        folders: set[str] = set()
        for file in manifest.files:
            check_member_name(file.name)
            folded = unicodedata.normalize("NFC", file.name).casefold()
            if folded in seen:
                raise ArchiveError(
                    N_("the envelope lists {name!r} twice"),
                    name=file.name,
                )
            seen.add(folded)
            parts = folded.split("/")
            folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
            if file.size < 0 or len(file.sha256) != 64:
                raise ArchiveError(
                    N_("the manifest's entry for {name!r} is damaged"),
                    name=file.name,
                )
        # "a" and "a/b": one path cannot be both a file and a folder.
        clash = sorted(seen & folders)
        if clash:
            raise ArchiveError(
                N_("the envelope holds {value!r} both as a file and as a folder"),
                value=clash[0],
            )
        return manifest


MAX_COMPONENT_BYTES = 255
"""The longest file or folder name most file systems hold (ext4, NTFS in UTF-16 units)."""


def check_member_name(name: str) -> str:
    """Refuse a name that could land outside the target folder, or be read two ways."""
    encoded = name.encode("utf-8", "surrogatepass")
    if not name or len(encoded) > MAX_NAME_BYTES:
        raise ArchiveError(
            N_("the envelope holds a file with an unusable name: {name!r}"),
            name=name,
        )
    path = PurePosixPath(name)
    if any(len(part.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES for part in path.parts):
        raise ArchiveError(
            N_("the envelope holds a file name too long for any disk: {value!r}…"),
            value=name[:80],
        )
    if (
        "\\" in name
        or "\x00" in name
        or path.is_absolute()
        or name.startswith("/")
        or (len(name) > 1 and name[1] == ":")  # a Windows drive
        or any(part in ("", ".", "..") for part in name.split("/"))
        or any(ord(char) < 0x20 for char in name)
    ):
        raise ArchiveError(
            N_("the envelope holds a file with an unsafe name: {name!r}"),
            name=name,
        )
    return name


# --- packing -------------------------------------------------------------------


@dataclass(frozen=True)
class PackedFile:
    """A file to pack: where it is, and what pass 1 found."""

    source: Path
    entry: ManifestFile
    crc32: int


@dataclass(frozen=True)
class PackPlan:
    """Everything pass 2 needs, and the archive's exact size."""

    manifest: Manifest
    files: tuple[PackedFile, ...]

    @property
    def manifest_bytes(self) -> bytes:
        return self.manifest.to_json()

    @property
    def size(self) -> int:
        """The archive's length in bytes, known before it is written."""
        return sum(len(part) for part in _layout(self, sizes_only=True))


def _members(source: Path) -> list[tuple[str, Path]]:
    """(name in the envelope, path) of every file under `source`, sorted by name."""
    try:
        info = source.lstat()
    except OSError as error:
        raise InvalidInputError(
            N_("cannot read {source_}: {strerror}"),
            source_=source,
            strerror=error.strerror,
        ) from None
    if stat.S_ISLNK(info.st_mode):
        raise InvalidInputError(
            N_("{source_} is a link: give the file or folder it points to"),
            source_=source,
        )
    if stat.S_ISREG(info.st_mode):
        return [(source.name, source)]
    if not stat.S_ISDIR(info.st_mode):
        raise InvalidInputError(
            N_("{source_} is neither a file nor a folder"),
            source_=source,
        )
    found: list[tuple[str, Path]] = []
    for folder, subfolders, names in os.walk(source, onerror=_walk_error):
        subfolders.sort()
        for name in [*names, *subfolders]:
            path = Path(folder) / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise InvalidInputError(
                    N_("{path} is a link: links are not packed (copy the file into the folder)"),
                    path=path,
                )
            if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
                raise InvalidInputError(
                    N_("{path} is not a regular file"),
                    path=path,
                )
            if stat.S_ISREG(mode):
                found.append((path.relative_to(source).as_posix(), path))
    if not found:
        raise InvalidInputError(
            N_("the folder {source_} holds no file"),
            source_=source,
        )
    return sorted(found, key=lambda member: member[0].encode("utf-8", "surrogatepass"))


def _walk_error(error: OSError) -> None:
    raise InvalidInputError(
        N_("cannot read {filename}: {strerror}"),
        filename=error.filename,
        strerror=error.strerror,
    )


def _hash_file(path: Path, progress: Progress | None) -> tuple[int, str, int]:
    digest = hashlib.sha256()
    crc = 0
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(READ_SIZE):
            digest.update(chunk)
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            if progress is not None:
                progress(len(chunk))
    return size, digest.hexdigest(), crc


def plan_archive(
    source: Path,
    *,
    tender: str,
    envelope: str,
    bidder: str,
    progress: Progress | None = None,
) -> PackPlan:
    """Pass 1: list and hash the file or folder `source`."""
    files: list[PackedFile] = []
    seen: set[str] = set()
    members = _members(source)
    if len(members) > MAX_FILES:
        raise InvalidInputError(
            N_("{source_} holds {len} files; an envelope holds at most {max_files}"),
            hint=N_("Put them in a ZIP file of your own first."),
            source_=source,
            len=len(members),
            max_files=MAX_FILES,
        )
    for name, path in members:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError(
                N_("the name of {path} is not valid text; rename it"),
                path=path,
            ) from None
        try:
            check_member_name(name)
        except ArchiveError as error:
            raise InvalidInputError(error.message) from None
        if name == MANIFEST_NAME:
            raise InvalidInputError(
                N_("{path} would clash with the envelope's own {manifest_name}: rename it"),
                path=path,
                manifest_name=MANIFEST_NAME,
            )
        folded = unicodedata.normalize("NFC", name).casefold()
        if folded in seen:
            raise InvalidInputError(
                N_("two files would be named {name!r} on Windows: rename one"),
                name=name,
            )
        seen.add(folded)
        try:
            size, sha256, crc = _hash_file(path, progress)
        except OSError as error:
            raise InvalidInputError(
                N_("cannot read {path}: {strerror}"),
                path=path,
                strerror=error.strerror,
            ) from None
        files.append(PackedFile(path, ManifestFile(name, size, sha256), crc))
    manifest = Manifest(tender, envelope, bidder, tuple(file.entry for file in files))
    return PackPlan(manifest, tuple(files))


def _local_header(name: bytes, size: int, crc: int) -> bytes:
    zip64 = size >= _ZIP32_LIMIT
    extra = struct.pack("<HHQQ", 0x0001, 16, size, size) if zip64 else b""
    shown = _ZIP32_LIMIT if zip64 else size
    return (
        struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            _VERSION_ZIP64 if zip64 else _VERSION_ZIP32,
            _UTF8_NAMES,
            0,  # stored
            _DOS_TIME,
            _DOS_DATE,
            crc,
            shown,
            shown,
            len(name),
            len(extra),
        )
        + name
        + extra
    )


def _central_header(name: bytes, size: int, crc: int, offset: int) -> bytes:
    extra_values = []
    if size >= _ZIP32_LIMIT:
        extra_values += [size, size]
    if offset >= _ZIP32_LIMIT:
        extra_values.append(offset)
    extra = (
        struct.pack(f"<HH{len(extra_values)}Q", 0x0001, 8 * len(extra_values), *extra_values)
        if extra_values
        else b""
    )
    version = _VERSION_ZIP64 if extra_values else _VERSION_ZIP32
    return (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            _MADE_BY_UNIX | version,
            version,
            _UTF8_NAMES,
            0,
            _DOS_TIME,
            _DOS_DATE,
            crc,
            min(size, _ZIP32_LIMIT),
            min(size, _ZIP32_LIMIT),
            len(name),
            len(extra),
            0,  # comment
            0,  # disk
            0,  # internal attributes
            _REGULAR_FILE,
            min(offset, _ZIP32_LIMIT),
        )
        + name
        + extra
    )


def _end_records(entries: int, directory_size: int, directory_offset: int) -> bytes:
    needs_zip64 = (
        entries >= 0xFFFF or directory_size >= _ZIP32_LIMIT or directory_offset >= _ZIP32_LIMIT
    )
    records = b""
    if needs_zip64:
        zip64_offset = directory_offset + directory_size
        records += struct.pack(
            "<IQHHIIQQQQ",
            0x06064B50,
            44,
            _MADE_BY_UNIX | _VERSION_ZIP64,
            _VERSION_ZIP64,
            0,
            0,
            entries,
            entries,
            directory_size,
            directory_offset,
        )
        records += struct.pack("<IIQI", 0x07064B50, 0, zip64_offset, 1)
    records += struct.pack(
        "<IHHHHIIH",
        0x06054B50,
        0,
        0,
        min(entries, 0xFFFF),
        min(entries, 0xFFFF),
        min(directory_size, _ZIP32_LIMIT),
        min(directory_offset, _ZIP32_LIMIT),
        0,
    )
    return records


class _Data:
    """A placeholder in the layout for `size` bytes of a member's content."""

    def __init__(self, size: int, source: Path | bytes) -> None:
        self.size = size
        self.source = source

    def __len__(self) -> int:
        return self.size


def _layout(plan: PackPlan, *, sizes_only: bool = False) -> Iterator[bytes | _Data]:
    """The archive as a sequence of header bytes and member contents."""
    manifest = plan.manifest_bytes
    members: list[tuple[bytes, int, int, Path | bytes]] = [
        (MANIFEST_NAME.encode(), len(manifest), zlib.crc32(manifest), manifest)
    ]
    members += [
        (file.entry.name.encode(), file.entry.size, file.crc32, file.source) for file in plan.files
    ]
    offset = 0
    central = []
    for name, size, crc, source in members:
        central.append(_central_header(name, size, crc, offset))
        header = _local_header(name, size, crc)
        offset += len(header) + size
        yield header
        yield _Data(size, source)
    directory = b"".join(central)
    yield directory
    yield _end_records(len(members), len(directory), offset)


def write_archive(plan: PackPlan, sink: Writable, *, progress: Progress | None = None) -> int:
    """Pass 2: stream the archive into `sink`; returns its length.

    Refuses a file that changed since pass 1 (its size or CRC-32 differ):
    the manifest would lie, and a resumed deposit would not match.
    """
    written = 0
    entries = {file.source: file for file in plan.files}
    for part in _layout(plan):
        if isinstance(part, bytes):
            write_all(sink, part)
            written += len(part)
        elif isinstance(part.source, bytes):
            write_all(sink, part.source)
            written += part.size
        else:
            written += _copy_checked(part.source, entries[part.source], sink, progress)
    return written


def _copy_checked(path: Path, file: PackedFile, sink: Writable, progress: Progress | None) -> int:
    # CRC-32 rather than a second SHA-256: this only has to notice a file
    # edited between the passes (the manifest's SHA-256 comes from pass 1),
    # and it costs a quarter as much on the path every byte of a bid takes.
    entry = file.entry
    crc = 0
    size = 0
    try:
        with path.open("rb") as handle:
            while size < entry.size and (chunk := handle.read(min(READ_SIZE, entry.size - size))):
                crc = zlib.crc32(chunk, crc)
                write_all(sink, chunk)
                size += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            grew = bool(handle.read(1))
    except OSError as error:
        raise InvalidInputError(
            N_("cannot read {path}: {strerror}"),
            path=path,
            strerror=error.strerror,
        ) from None
    if size != entry.size or grew or crc != file.crc32:
        raise InvalidInputError(
            N_("{path} changed while it was being deposited: deposit again once it is final"),
            path=path,
        )
    return size


# --- opening -------------------------------------------------------------------


# --- opening: one pass over the archive, as it is decrypted ------------------------

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_MAX_EXTRA = 1 << 10
_MAX_TRAILER = 1 << 17  # end records, a comment at most


class _Stream:
    """Reads exactly what is asked from a stream, counting; a short read is an
    archive that ends too early."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self.position = 0

    def read(self, size: int) -> bytes:
        parts = []
        left = size
        while left:
            piece = self._source.read(min(left, READ_SIZE))
            if not piece:
                raise ArchiveError(
                    N_("the envelope's content ends before its archive does"),
                )
            parts.append(piece)
            left -= len(piece)
        self.position += size
        return b"".join(parts)

    def rest(self, limit: int) -> bytes | None:
        """Everything left, or None when more than `limit` bytes are left."""
        left = b""
        while piece := self._source.read(READ_SIZE):
            left += piece
            if len(left) > limit:
                return None
        return left


def _zip64_sizes(extra: bytes, count: int) -> tuple[int, ...]:
    """The first `count` 8-byte values of the ZIP64 extra field (id 1)."""
    while len(extra) >= 4:
        kind, length = struct.unpack_from("<HH", extra)
        if kind == 0x0001 and length >= 8 * count:
            return struct.unpack_from(f"<{count}Q", extra, 4)
        extra = extra[4 + length :]
    raise ArchiveError(
        N_("the envelope's archive has a damaged ZIP64 field"),
    )


def _read_local_header(stream: _Stream) -> tuple[bytes, int, int]:
    """(name, size, CRC-32) of the next member; only what Scellé writes is accepted."""
    fields = _LOCAL.unpack(stream.read(_LOCAL.size))
    (
        signature,
        _version,
        flags,
        method,
        _time,
        _date,
        crc,
        packed,
        size,
        name_length,
        extra_length,
    ) = fields
    if signature != 0x04034B50:
        raise ArchiveError(
            N_("the envelope's files differ from its manifest"),
        )
    if name_length > MAX_NAME_BYTES or extra_length > _MAX_EXTRA:
        raise ArchiveError(
            N_("the envelope's archive has an oversized header"),
        )
    name = stream.read(name_length)
    extra = stream.read(extra_length)
    # Stored, not encrypted, sizes in the header (no data descriptor): nothing else.
    if method != 0 or flags & ~_UTF8_NAMES:
        raise ArchiveError(
            N_("{decode!r} is stored in a way Scellé never writes"),
            decode=name.decode("utf-8", "replace"),
        )
    if packed == size == _ZIP32_LIMIT:
        packed, size = _zip64_sizes(extra, 2)
    if packed != size:
        raise ArchiveError(
            N_("{decode!r} is stored in a way Scellé never writes"),
            decode=name.decode("utf-8", "replace"),
        )
    return name, size, crc


def _read_directory(stream: _Stream, members: list[tuple[bytes, int]]) -> None:
    """The central directory must list exactly the members read, as regular files."""
    for name, crc in members:
        fields = _CENTRAL.unpack(stream.read(_CENTRAL.size))
        signature, crc_listed = fields[0], fields[7]
        name_length, extra_length, comment_length, external = (
            fields[10], fields[11], fields[12], fields[15]
        )  # fmt: skip
        if signature != 0x02014B50:
            raise ArchiveError(
                N_("the envelope's files differ from its manifest"),
            )
        if name_length > MAX_NAME_BYTES or extra_length > _MAX_EXTRA or comment_length:
            raise ArchiveError(
                N_("the envelope's archive has an oversized header"),
            )
        listed = stream.read(name_length)
        stream.read(extra_length)
        if listed != name or crc_listed != crc:
            raise ArchiveError(
                N_("the envelope's directory differs from its files"),
            )
        mode = external >> 16
        if stat.S_ISLNK(mode) or stat.S_ISDIR(mode):
            raise ArchiveError(
                N_("the envelope holds a folder or a link: {decode!r}"),
                decode=listed.decode("utf-8", "replace"),
            )
    trailer = stream.rest(_MAX_TRAILER)
    if trailer is None or not trailer.startswith((b"PK\x06\x06", b"PK\x05\x06")):
        raise ArchiveError(
            N_("the envelope's archive does not end as an archive does"),
        )


def _extract_member(
    stream: _Stream, entry: ManifestFile, staging: Path | None, progress: Progress | None
) -> None:
    """Write one member's bytes into `staging` (None: only check them), checked against
    the manifest's SHA-256 (which the GCM tag covers: the weaker CRC-32 of the headers
    is not computed)."""
    digest = hashlib.sha256()
    if staging is None:
        _copy_member(stream, entry.size, digest, None, progress)
    else:
        destination = staging.joinpath(*entry.name.split("/"))
        # Belt and braces after check_member_name: the path must stay inside.
        if not destination.resolve().is_relative_to(staging.resolve()):
            raise ArchiveError(
                N_("the envelope holds a file with an unsafe name: {name!r}"),
                name=entry.name,
            )
        destination.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        with os.fdopen(os.open(destination, flags, 0o600), "wb") as out:
            _copy_member(stream, entry.size, digest, out, progress)
    if digest.hexdigest() != entry.sha256:
        raise ArchiveError(
            N_("{name!r} does not match its manifest's SHA-256"),
            name=entry.name,
        )


def _copy_member(
    stream: _Stream,
    size: int,
    digest: hashlib._Hash,
    out: Writable | None,
    progress: Progress | None,
) -> None:
    left = size
    while left:
        chunk = stream.read(min(left, READ_SIZE))
        left -= len(chunk)
        digest.update(chunk)
        if out is not None:
            write_all(out, chunk)
        if progress is not None:
            progress(len(chunk))


def _read_archive(
    stream: _Stream,
    staging: Path | None,
    expect: Callable[[Manifest], None] | None,
    progress: Progress | None,
) -> Manifest:
    name, size, crc = _read_local_header(stream)
    if name != MANIFEST_NAME.encode():
        raise ArchiveError(
            N_("the envelope does not start with its {manifest_name}"),
            manifest_name=MANIFEST_NAME,
        )
    if size > MAX_MANIFEST_BYTES:
        raise ArchiveError(
            N_("the envelope's manifest is too large"),
        )
    document = stream.read(size)
    if zlib.crc32(document) != crc:
        raise ArchiveError(
            N_("the envelope's manifest is damaged"),
        )
    manifest = Manifest.from_json(document)
    if len(manifest.files) > MAX_FILES:
        raise ArchiveError(
            N_("the envelope holds {len} files; at most {max_files}"),
            len=len(manifest.files),
            max_files=MAX_FILES,
        )
    if expect is not None:
        expect(manifest)
    members = [(name, crc)]
    for entry in manifest.files:
        name, size, crc = _read_local_header(stream)
        if name != entry.name.encode("utf-8", "surrogatepass"):
            raise ArchiveError(
                N_("the envelope's files differ from its manifest"),
            )
        if size != entry.size:
            raise ArchiveError(
                N_("{name!r} has not the size its manifest says"),
                name=entry.name,
            )
        _extract_member(stream, entry, staging, progress)
        members.append((name, crc))
    _read_directory(stream, members)
    return manifest


def open_archive(
    source: Path | Readable,
    target: Path,
    *,
    expect: Callable[[Manifest], None] | None = None,
    before_publish: Callable[[Manifest], None] | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Extract the archive `source` (a file, or a stream read once from start to end,
    such as a decryption's output) into the new folder `target`, checking everything;
    `expect` may refuse the manifest first, and `before_publish` runs once every file
    checked out, before any appears at `target` (an exception there leaves nothing).

    Only the layout Scellé writes is read: the manifest first, then each file
    it lists, in order, stored, then a directory naming the same files. The
    files are written in a temporary folder beside `target`, renamed into
    place only when every file matched its manifest entry; on any failure
    nothing is left.
    """
    if target.exists():
        raise InvalidInputError(
            N_("{target} already exists"),
            target=target,
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        if isinstance(source, Path):
            with source.open("rb") as handle:
                manifest = _read_archive(_Stream(handle), staging, expect, progress)
        else:
            manifest = _read_archive(_Stream(source), staging, expect, progress)
        if before_publish is not None:
            before_publish(manifest)
        staging.rename(target)
    except struct.error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ArchiveError(
            N_("the envelope's content is not a readable archive"),
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def check_archive(
    source: Readable,
    *,
    before_done: Callable[[Manifest], None] | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Read the archive `source` to its end and check it as `open_archive` does, writing
    nothing: its manifest, once every file matched it and `before_done` (a decryption's
    tag check) agreed."""
    try:
        manifest = _read_archive(_Stream(source), None, None, progress)
    except struct.error:
        raise ArchiveError(
            N_("the envelope's content is not a readable archive"),
        ) from None
    if before_done is not None:
        before_done(manifest)
    return manifest
