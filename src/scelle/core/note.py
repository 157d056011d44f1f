"""Signed notes (c2sp.org/signed-note) with Ed25519, and witnesses' cosignatures
(c2sp.org/tlog-cosignature, cosignature/v1): what the transparency log's checkpoints
are written in (DESIGN.md, "Formats").

A note is UTF-8 text of newline-terminated lines, a blank line, then one line per
signature:

    — <key name> base64(key ID (4 bytes) || signature)

The key ID is the first 4 bytes of SHA-256(name || "\\n" || type || public key), type
0x01 for a signer of the note itself (the log), 0x04 for a cosigner (a witness), whose
signature is an 8-byte big-endian time followed by the Ed25519 signature of
"cosignature/v1\\ntime <t>\\n" + the note's text. A verifier key ("vkey") is written
`<name>+<key ID, hex>+base64(type || public key)`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from scelle.core.errors import N_, LogError

ED25519 = 0x01
COSIGNATURE = 0x04
DASH = "\N{EM DASH} "
MAX_NOTE_BYTES = 1 << 16
MAX_SIGNATURES = 100


def _raw(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def check_name(name: str) -> str:
    """A key name: printable, no spaces, no plus sign."""
    if not name or "+" in name or any(c.isspace() or not c.isprintable() for c in name):
        raise LogError(N_("{name!r} cannot name a key of the log"), name=name[:80])
    return name


def key_id(name: str, kind: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public).digest()[:4]


@dataclass(frozen=True)
class Verifier:
    """A public key that signs notes: a log's (ED25519) or a witness's (COSIGNATURE)."""

    name: str
    kind: int
    public: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.kind, self.public)

    @property
    def vkey(self) -> str:
        material = base64.b64encode(bytes([self.kind]) + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{material}"

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Read a vkey; refuse one whose parts disagree."""
        try:
            name, hex_id, material = vkey.strip().split("+", 2)
            raw = base64.b64decode(material, validate=True)
            kind, public = raw[0], raw[1:]
            ed25519.Ed25519PublicKey.from_public_bytes(public)
        except (ValueError, IndexError, binascii.Error):
            raise LogError(N_("this is not a key of a transparency log: {value!r}"),
                           value=vkey[:80]) from None  # fmt: skip
        verifier = cls(check_name(name), kind, public)
        if kind not in (ED25519, COSIGNATURE) or verifier.key_id.hex() != hex_id.lower():
            raise LogError(N_("this is not a key of a transparency log: {value!r}"),
                           value=vkey[:80])  # fmt: skip
        return verifier

    def verifies(self, message: bytes, signature: bytes) -> bool:
        try:
            ed25519.Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """A private key that signs notes, under a name."""

    name: str
    key: ed25519.Ed25519PrivateKey
    kind: int = ED25519

    @property
    def verifier(self) -> Verifier:
        return Verifier(check_name(self.name), self.kind, _raw(self.key.public_key()))


def _line(verifier: Verifier, signature: bytes) -> str:
    return f"{DASH}{verifier.name} {base64.b64encode(verifier.key_id + signature).decode()}\n"


def sign(text: str, signer: Signer) -> str:
    """The note: `text` (newline-terminated lines) signed by the log's key."""
    if not text.endswith("\n") or "\n\n" in text:
        raise LogError(N_("a note's text is lines ending with a newline, none empty"))
    return f"{text}\n{_line(signer.verifier, signer.key.sign(text.encode()))}"


def _cosigned_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def cosign(text: str, signer: Signer, timestamp: int) -> str:
    """A witness's cosignature line over a checkpoint's text, at `timestamp` (POSIX)."""
    if not 0 <= timestamp < 1 << 63:
        raise LogError(N_("a cosignature's time must be a POSIX time"))
    signature = signer.key.sign(_cosigned_message(text, timestamp))
    return _line(signer.verifier, struct.pack(">Q", timestamp) + signature)


@dataclass(frozen=True)
class Signature:
    """One signature line of a note, not yet checked."""

    name: str
    key_id: bytes
    signature: bytes

    @property
    def line(self) -> str:
        return f"{DASH}{self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"


@dataclass(frozen=True)
class Note:
    """A note read from text: its text and its signature lines, none checked yet."""

    text: str
    signatures: tuple[Signature, ...]

    def signed_by(self, verifier: Verifier) -> bool:
        """Whether one of the signatures is `verifier`'s and verifies."""
        for found in self.signatures:
            if found.name != verifier.name or not hmac.compare_digest(
                found.key_id, verifier.key_id
            ):
                continue
            if verifier.kind == ED25519:
                if verifier.verifies(self.text.encode(), found.signature):
                    return True
            elif len(found.signature) == 72:
                (timestamp,) = struct.unpack(">Q", found.signature[:8])
                message = _cosigned_message(self.text, timestamp)
                if timestamp < 1 << 63 and verifier.verifies(message, found.signature[8:]):
                    return True
        return False

    def cosigned_at(self, verifier: Verifier) -> int | None:
        """The time a witness's cosignature says, once it verified."""
        if verifier.kind != COSIGNATURE or not self.signed_by(verifier):
            return None
        for found in self.signatures:
            if found.name == verifier.name and found.key_id == verifier.key_id:
                return int(struct.unpack(">Q", found.signature[:8])[0])
        return None

    def with_signatures(self, lines: Sequence[Signature]) -> str:
        """The note with these signature lines added (each kept once)."""
        kept = list(self.signatures)
        kept += [line for line in lines if line not in kept]
        return self.text + "\n" + "".join(s.line for s in kept)

    def __str__(self) -> str:
        return self.with_signatures(())


def parse_signature(line: str) -> Signature:
    """One signature line (with or without its newline)."""
    line = line.removesuffix("\n")
    if not line.startswith(DASH) or "\n" in line:
        raise LogError(N_("this is not a signature line of a note"))
    try:
        name, encoded = line[len(DASH) :].split(" ")
        raw = base64.b64decode(encoded, validate=True)
    except (ValueError, binascii.Error):
        raise LogError(N_("this is not a signature line of a note")) from None
    if len(raw) < 5:
        raise LogError(N_("this is not a signature line of a note"))
    return Signature(check_name(name), raw[:4], raw[4:])


def parse(data: bytes | str) -> Note:
    """Read a signed note; refuse anything not in the format (nothing is verified)."""
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_NOTE_BYTES:
        raise LogError(N_("this is not a signed note: it is too large"))
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        raise LogError(N_("this is not a signed note: it is not UTF-8")) from None
    text, blank, signatures = decoded.partition("\n\n")
    if not blank or not text or "\r" in decoded or not signatures.endswith("\n"):
        raise LogError(N_("this is not a signed note"))
    lines = signatures[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise LogError(N_("this is not a signed note: it carries too many signatures"))
    return Note(text + "\n", tuple(parse_signature(line) for line in lines))
