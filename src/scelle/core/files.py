"""Files that hold secrets or unverified plaintext: created 0600, written atomically.

The one place that creates such files (STYLE.md, practice 8, after certbot's
`util.safe_open`): `O_EXCL` so nothing is followed or clobbered, mode 0600 from
the first byte, fsync before the rename, and no trace left on failure.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from scelle.core.errors import N_, InvalidInputError, OutputExistsError, StoreError

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) as 0700 folders, or tighten an existing one to 0700."""
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        info = path.stat()
        if not stat.S_ISDIR(info.st_mode):
            raise StoreError(
                N_("{path} exists and is not a folder"),
                path=path,
            )
        if stat.S_IMODE(info.st_mode) != PRIVATE_DIR_MODE:
            path.chmod(PRIVATE_DIR_MODE)
    except OSError as error:
        raise StoreError(
            N_("cannot prepare the folder {path}: {strerror}"),
            path=path,
            strerror=error.strerror,
        ) from error
    return path


def _open_exclusive(path: Path, mode: int) -> BinaryIO:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    if mode != PRIVATE_FILE_MODE:
        path.chmod(mode)  # os.fchmod is POSIX-only before Python 3.13
    return os.fdopen(fd, "wb", buffering=0)


def fsync_dir(path: Path) -> None:
    """Make a folder's entries durable (after creating or renaming a file in it).

    Windows cannot open a folder as a file; NTFS journals its entries itself.
    """
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name_beside(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")


@contextlib.contextmanager
def atomic_output(
    target: Path, *, overwrite: bool = False, mode: int = PRIVATE_FILE_MODE
) -> Iterator[BinaryIO]:
    """Write `target` through a temporary file beside it, 0600 unless `mode` says otherwise.

    The caller writes into the yielded unbuffered file; the file appears at
    `target` only when the block ends without an exception (after fsync). On
    any failure the temporary file is removed and `target` is untouched.
    Only public data (a certificate) should ask for a wider `mode`.
    """
    target = Path(target)
    if not overwrite and target.exists():
        raise OutputExistsError(
            N_("{target} already exists"),
            hint=N_("Choose another output name or pass --force."),
            target=target,
        )
    temp = _temp_name_beside(target)
    try:
        handle = _open_exclusive(temp, mode)
    except OSError as error:
        raise InvalidInputError(
            N_("cannot write {target}: {strerror}"),
            target=target,
            strerror=error.strerror,
        ) from error
    committed = False
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            temp.replace(target)
        else:
            # link() fails if the target appeared meanwhile: never clobber.
            try:
                os.link(temp, target)
            except FileExistsError as error:
                raise OutputExistsError(
                    N_("{target} already exists"),
                    target=target,
                ) from error
            temp.unlink()
        committed = True
        fsync_dir(target.parent)
    except OSError as error:
        raise InvalidInputError(
            N_("cannot write {target}: {strerror}"),
            target=target,
            strerror=error.strerror,
        ) from error
    finally:
        if not committed:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def write_private_file(target: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Atomically write `data` to `target`, 0600."""
    with atomic_output(target, overwrite=overwrite) as handle:
        write_all(handle, data)


class Readable(Protocol):
    """A binary input: a file opened "rb", standard input's buffer, a socket file."""

    def read(self, size: int = -1, /) -> bytes | None: ...

    def readinto(self, buffer: memoryview, /) -> int | None: ...

    def readline(self, size: int = -1, /) -> bytes: ...


class Writable(Protocol):
    """Anything with a binary `write`: a file, a socket file, a hashing sink."""

    def write(self, data: bytes | bytearray | memoryview, /) -> int | None: ...


def write_all(handle: Writable, data: bytes | bytearray | memoryview) -> None:
    """Write every byte of `data`: unbuffered files may take fewer than asked."""
    view = memoryview(data)
    while view:
        written = handle.write(view)
        if not written:
            raise OSError("short write")
        view = view[written:]


@contextlib.contextmanager
def private_temporary_file(directory: Path | None = None) -> Iterator[BinaryIO]:
    """A 0600 read-write temporary file, removed when the block ends."""
    fd, name = tempfile.mkstemp(prefix=".scelle-", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "w+b") as handle:
            yield handle
    finally:
        with contextlib.suppress(FileNotFoundError):
            Path(name).unlink()
