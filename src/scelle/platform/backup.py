"""`scelle admin backup` and `restore`: the whole platform in one archive, taken while it
runs, restored onto a fresh host.

The archive is a tar stream (`scelle-backup/1`), 0600, read and written in order:

- `manifest.json`: the format, when, the database's engine, and each envelope of the
  snapshot with its size, SHA-256 and retention;
- `envelopes/<name>`: each envelope the snapshot names, streamed from the folder or
  the object store, its SHA-256 checked on the way;
- `database.sqlite3` (SQLite's backup API) or `database.pgdump` (pg_dump's custom
  format): the database;
- `keys/…`: the platform's keys folder (CA, receipt signer, transparency log,
  secret): the archive is as secret as that folder;
- `end.json`: the counts; an archive without it was cut short and is refused.

Consistency while the platform runs: the database is copied first, as one snapshot
(SQLite's backup of a read transaction; PostgreSQL's exported snapshot, which the
envelope list and pg_dump share); envelopes never change once deposited, so every
envelope the snapshot names is then copied. Uploads in progress are not kept (the
companies resume them, or deposit again).

A restore goes to a fresh platform only (no keys, an empty database) of the same
engine: envelopes first, each checked against the manifest; then the database; the
keys last, so a restore that fails leaves no platform, and may be run again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connection

from scelle.core.errors import N_, InvalidInputError, OutputExistsError, RuleViolationError
from scelle.core.files import PRIVATE_FILE_MODE, ensure_private_dir
from scelle.platform.deposits import storage

FORMAT = "scelle-backup/1"
PIECE = 4 << 20
_NAME = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.p7m")
_KEY_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Report:
    envelopes: int
    bytes: int
    missing: tuple[str, ...] = ()
    """Envelopes the snapshot names that were gone when copied (test deposits swept
    meanwhile)."""


def _keys_folder() -> Path:
    return Path(settings.KEYS_DIR)


def _sqlite_path() -> Path:
    return Path(str(settings.DATABASES["default"]["NAME"]))


# --- backup ---------------------------------------------------------------------------


def backup(target: Path, *, now: dt.datetime, progress: Progress | None = None) -> Report:
    """Write the archive to `target` (refused if it exists), through a 0600 partial file
    renamed once complete."""
    if target.exists():
        raise OutputExistsError(N_("{path} exists already: choose another name"), path=target)
    partial = target.with_name(f".{target.name}.partial")
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=target.parent)))
        database, envelopes = _snapshot(work)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w|") as archive:
                manifest = {
                    "format": FORMAT,
                    "created_at": now.isoformat(),
                    "engine": connection.vendor,
                    "envelopes": envelopes,
                }
                _add_bytes(archive, "manifest.json", json.dumps(manifest, indent=1).encode())
                copied, size, missing = _copy_envelopes(archive, envelopes, progress)
                archive.add(database, arcname=f"database{database.suffix}", recursive=False)
                for path in sorted(_keys_folder().iterdir()):
                    if path.is_file() and not path.is_symlink():
                        archive.add(path, arcname=f"keys/{path.name}", recursive=False)
                end = {"envelopes": copied, "bytes": size, "missing": missing}
                _add_bytes(archive, "end.json", json.dumps(end).encode())
                raw.flush()
                os.fsync(raw.fileno())
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return Report(copied, size, tuple(missing))


def _snapshot(work: Path) -> tuple[Path, list[dict[str, Any]]]:
    """The database copied as one snapshot, and the envelopes that snapshot names."""
    query = (
        "SELECT e.storage_name, e.size, e.sha256, t.is_test, t.deadline, t.closed_at "
        "FROM deposits_envelope e JOIN deposits_deposit d ON d.id = e.deposit_id "
        "JOIN tenders_tender t ON t.id = d.tender_id ORDER BY e.storage_name"
    )
    if connection.vendor == "sqlite":
        copy = work / "database.sqlite3"
        source = sqlite3.connect(_sqlite_path())
        try:
            with contextlib.closing(sqlite3.connect(copy)) as target:
                source.backup(target)  # one read transaction: a consistent copy
        finally:
            source.close()
        with contextlib.closing(sqlite3.connect(copy)) as snapshot:
            rows = snapshot.execute(query).fetchall()
        return copy, [_envelope(row) for row in rows]
    return _postgres_snapshot(work, query)


def _postgres_snapshot(work: Path, query: str) -> tuple[Path, list[dict[str, Any]]]:
    import psycopg

    url = _postgres_url()
    copy = work / "database.pgdump"
    with psycopg.connect(url, autocommit=True) as held:
        held.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = held.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        rows = held.execute(query).fetchall()
        # pg_dump reads the very snapshot the envelope list was read in.
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges",
              f"--snapshot={row[0]}", f"--file={copy}", f"--dbname={url}"])  # fmt: skip
        held.execute("COMMIT")
    return copy, [_envelope(row) for row in rows]


def _envelope(row: tuple[Any, ...]) -> dict[str, Any]:
    name, size, sha256, is_test, deadline, closed_at = row

    def moment(value: object) -> str | None:
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC).isoformat()
        return dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.UTC).isoformat()

    return {
        "name": name, "size": int(size), "sha256": sha256, "test": bool(is_test),
        "deadline": moment(deadline), "closed_at": moment(closed_at),
    }  # fmt: skip


def _copy_envelopes(
    archive: tarfile.TarFile, envelopes: list[dict[str, Any]], progress: Progress | None
) -> tuple[int, int, list[str]]:
    copied, total, missing = 0, 0, []
    for entry in envelopes:
        try:
            handle = storage.open_envelope(entry["name"])
        except OSError:
            missing.append(entry["name"])
            continue
        with handle:
            hashed = _Hashing(handle, progress)
            info = tarfile.TarInfo(f"envelopes/{entry['name']}")
            info.size, info.mode = entry["size"], PRIVATE_FILE_MODE
            archive.addfile(info, hashed)
            if hashed.digest.hexdigest() != entry["sha256"] or hashed.read_count != entry["size"]:
                raise RuleViolationError(
                    N_("the envelope {name} the platform holds is not the one deposited "
                       "(SHA-256 differs): the backup stopped"),
                    name=entry["name"],
                )  # fmt: skip
        copied += 1
        total += entry["size"]
    return copied, total, missing


class _Hashing(io.RawIOBase):
    """A reader that hashes what it gives (tarfile reads exactly the size it was told)."""

    def __init__(self, source: IO[bytes], progress: Progress | None) -> None:
        self._source, self._progress = source, progress
        self.digest = hashlib.sha256()
        self.read_count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        piece = self._source.read(size)
        self.digest.update(piece)
        self.read_count += len(piece)
        if self._progress is not None:
            self._progress(len(piece))
        return piece


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), PRIVATE_FILE_MODE
    archive.addfile(info, io.BytesIO(data))


# --- restore --------------------------------------------------------------------------


def restore(source: Path, *, progress: Progress | None = None) -> Report:
    """Restore the archive onto this fresh platform (see the module's docstring); the
    envelopes written are removed again if it fails."""
    _require_fresh()
    restored: list[str] = []
    try:
        return _restore_from(source, restored, progress)
    except BaseException:
        for name in restored:  # no envelope left behind: the restore may be run again
            with contextlib.suppress(OSError, InvalidInputError):
                storage.remove(name)
        raise


def _restore_from(source: Path, restored: list[str], progress: Progress | None) -> Report:
    with source.open("rb") as raw, tarfile.open(fileobj=raw, mode="r|") as archive:
        members = _members(archive)
        manifest = _json(archive, next(members, None), "manifest.json", limit=1 << 30)
        if manifest.get("format") != FORMAT:
            raise InvalidInputError(N_("{path} is not a Scellé backup"), path=source)
        if manifest.get("engine") != connection.vendor:
            raise RuleViolationError(
                N_("this backup is of a {engine} platform: restore it onto one with the same "
                   "database engine"),
                engine=manifest.get("engine"),
            )  # fmt: skip
        expected = {entry["name"]: entry for entry in manifest.get("envelopes", [])}
        copied, total = 0, 0
        member = next(members, None)
        while member is not None and member.name.startswith("envelopes/"):
            name = member.name.removeprefix("envelopes/")
            entry = expected.get(name)
            if entry is None or not _NAME.fullmatch(name) or member.size != entry["size"]:
                raise InvalidInputError(N_("the backup holds an unknown envelope: {name}"),
                                        name=name[:100])  # fmt: skip
            restored.append(name)
            _restore_envelope(archive, member, entry, progress)
            copied, total = copied + 1, total + member.size
            member = next(members, None)
        if member is None or member.name not in ("database.sqlite3", "database.pgdump"):
            raise InvalidInputError(N_("the backup is cut short: its database is missing"))
        database = member
        with tempfile.TemporaryDirectory(dir=settings.DATA_DIR) as work:
            dumped = Path(work) / database.name
            _extract_to(archive, database, dumped)
            keys: list[tuple[str, bytes]] = []
            member = next(members, None)
            while member is not None and member.name.startswith("keys/"):
                name = member.name.removeprefix("keys/")
                if not _KEY_FILE.fullmatch(name) or member.size > 1 << 20:
                    raise InvalidInputError(N_("the backup holds an unknown key file: {name}"),
                                            name=name[:100])  # fmt: skip
                keys.append((name, _read(archive, member)))
                member = next(members, None)
            end = _json(archive, member, "end.json", limit=1 << 20)
            if end.get("envelopes") != copied:
                raise InvalidInputError(N_("the backup is cut short: envelopes are missing"))
            _restore_database(dumped)
        _restore_keys(keys)
    return Report(copied, total, tuple(end.get("missing", [])))


def _members(archive: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    for member in archive:
        if not member.isfile() or member.name.startswith("/") or ".." in member.name.split("/"):
            raise InvalidInputError(N_("the backup holds something other than files: {name}"),
                                    name=member.name[:100])  # fmt: skip
        yield member


def _json(
    archive: tarfile.TarFile, member: tarfile.TarInfo | None, name: str, *, limit: int
) -> dict[str, Any]:
    if member is None or member.name != name:
        raise InvalidInputError(N_("the backup is cut short: {name} is missing"), name=name)
    if member.size > limit:
        raise InvalidInputError(N_("{name} of the backup is too large"), name=name)
    try:
        found = json.loads(_read(archive, member))
    except ValueError:
        raise InvalidInputError(N_("{name} of the backup is not JSON"), name=name) from None
    if not isinstance(found, dict):
        raise InvalidInputError(N_("{name} of the backup is not JSON"), name=name)
    return found


def _read(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = archive.extractfile(member)
    assert handle is not None  # a regular file (checked)
    return handle.read()


def _extract_to(archive: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> None:
    handle = archive.extractfile(member)
    assert handle is not None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(handle, out, PIECE)


def _require_fresh() -> None:
    from scelle.platform.keypairs.authority import CA_FILES

    if (_keys_folder() / CA_FILES[1]).exists():
        raise RuleViolationError(
            N_("a platform is already here ({folder}): restore onto a fresh one"),
            folder=_keys_folder(),
        )
    if connection.vendor == "postgresql" and connection.introspection.table_names():
        raise RuleViolationError(
            N_("the database of SCELLE_DATABASE_URL is not empty: restore into a new one")
        )


def _restore_envelope(
    archive: tarfile.TarFile,
    member: tarfile.TarInfo,
    entry: dict[str, Any],
    progress: Progress | None,
) -> None:
    handle = archive.extractfile(member)
    assert handle is not None
    hashed = _Hashing(handle, progress)
    storage.put_envelope(entry["name"], hashed, entry["size"])
    if hashed.digest.hexdigest() != entry["sha256"]:
        raise InvalidInputError(
            N_("the envelope {name} of the backup is damaged (SHA-256 differs): nothing "
               "more was restored"),
            name=entry["name"],
        )  # fmt: skip
    if not entry["test"] and storage.retaining():
        closed = entry.get("closed_at") or entry["deadline"]
        storage.retain(entry["name"], storage.retention_end(dt.datetime.fromisoformat(closed)))


def _restore_database(dumped: Path) -> None:
    if connection.vendor == "sqlite":
        connection.close()
        with contextlib.closing(sqlite3.connect(dumped)) as source:
            if source.execute("PRAGMA integrity_check").fetchone() != ("ok",):
                raise InvalidInputError(N_("the database of the backup is damaged"))
            with contextlib.closing(sqlite3.connect(_sqlite_path())) as target:
                source.backup(target)
        return
    connection.close()
    _run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
          f"--dbname={_postgres_url()}", str(dumped)])  # fmt: skip


def _restore_keys(keys: list[tuple[str, bytes]]) -> None:
    folder = ensure_private_dir(_keys_folder())
    for name, data in keys:
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)


def _postgres_url() -> str:
    found = os.environ.get("SCELLE_DATABASE_URL", "").strip()
    if not found:  # pragma: no cover - the engine says PostgreSQL only when it is set
        raise InvalidInputError(N_("SCELLE_DATABASE_URL is not set"))
    return found


def _run(command: list[str]) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=86400)
    except FileNotFoundError:
        raise RuleViolationError(
            N_("{program} is missing: install PostgreSQL's client programs"), program=command[0]
        ) from None
    if done.returncode != 0:
        raise RuleViolationError(
            N_("{program} failed: {error}"), program=command[0], error=done.stderr.strip()[-500:]
        )
