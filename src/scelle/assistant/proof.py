"""Proof kits on the company's side: making one after a deposit, and checking a stored
envelope against one, as a judge or an expert would (core.proofkit).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from scelle.assistant.opening import decrypt_into_archive
from scelle.core import archive, envelope, proofkit
from scelle.core.errors import N_, DecryptionError, InvalidInputError, ReceiptError
from scelle.core.files import Readable
from scelle.core.receipt import VerifiedReceipt

Progress = archive.Progress


@dataclass(frozen=True)
class CheckedEnvelope:
    """A stored envelope shown to be the one the receipt names, and what it holds."""

    receipt: VerifiedReceipt
    envelope: proofkit.KitEnvelope
    manifest: archive.Manifest


class _Hashing(io.RawIOBase):
    """Reads a file while hashing every byte read."""

    def __init__(self, source: io.BufferedReader, progress: Progress | None) -> None:
        self._source = source
        self._progress = progress
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = self._source.readinto(buffer)
        self.digest.update(buffer[:count])
        if self._progress is not None:
            self._progress(count)
        return count


def check_envelope(
    kit: proofkit.ProofKit,
    path: Path,
    password: str,
    *,
    trusted_authority: x509.Certificate | None = None,
    extract: Path | None = None,
    progress: Progress | None = None,
) -> CheckedEnvelope:
    """Show that the envelope at `path` is one the kit's receipt names (its SHA-256), that
    the kit's content key opens it (no buyer key), and which files it holds, each
    checked against its manifest; with `extract`, they are written there, once all
    checked out."""
    verified = proofkit.verified_receipt(kit, trusted_authority=trusted_authority)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise InvalidInputError(
            N_("cannot read {path}: {reason}"), path=path, reason=error.strerror
        ) from None
    candidates = [item for item in kit.envelopes if item.size == size]
    if not candidates:
        raise ReceiptError(
            N_("{path} is not an envelope of this deposit: it holds {size} bytes, and the "
               "receipt names {named}"),
            path=path, size=size,
            named=", ".join(f"{e.kind} ({e.size})" for e in kit.envelopes),
        )  # fmt: skip
    # Same size: in practice one envelope; otherwise the tag says which key is its.
    for index, item in enumerate(candidates):
        key = envelope.KnownContentKey(proofkit.content_key(kit, item, password))
        try:
            manifest = _open(path, key, item, verified, extract, progress)
        except DecryptionError:
            if index == len(candidates) - 1:
                raise
            continue
        return CheckedEnvelope(verified, item, manifest)
    raise AssertionError("unreachable")  # pragma: no cover


def _open(
    path: Path,
    key: envelope.KnownContentKey,
    item: proofkit.KitEnvelope,
    verified: VerifiedReceipt,
    extract: Path | None,
    progress: Progress | None,
) -> archive.Manifest:
    with path.open("rb") as handle:
        hashing = _Hashing(handle, progress)

        def read(
            plaintext: Readable, tag_checked: Callable[[archive.Manifest], None]
        ) -> archive.Manifest:
            def done(manifest: archive.Manifest) -> None:
                tag_checked(manifest)
                _matches(manifest, hashing, item, verified)

            if extract is None:
                return archive.check_archive(plaintext, before_done=done)
            return archive.open_archive(plaintext, extract, before_publish=done)

        return decrypt_into_archive(hashing, [key], read)


def _matches(
    manifest: archive.Manifest,
    hashing: _Hashing,
    item: proofkit.KitEnvelope,
    verified: VerifiedReceipt,
) -> None:
    if hashing.digest.hexdigest() != item.sha256:
        raise ReceiptError(
            N_("this file opens, but it is not the envelope the receipt names: its SHA-256 "
               "differs")
        )  # fmt: skip
    if manifest.envelope != item.kind or manifest.tender != verified.receipt.tender:
        raise ReceiptError(
            N_("the envelope's manifest names another tender or envelope than the receipt")
        )
