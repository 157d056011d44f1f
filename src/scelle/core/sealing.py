"""Secrets at rest: a key derived from a passphrase seals small blobs with AES-256-GCM.

The local store keeps each private key sealed this way (DESIGN.md: keys
encrypted at rest with the store passphrase). Argon2id makes each guess of
the passphrase cost memory and time; its parameters are stored beside the
salt so that they can be raised later without breaking older stores.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from scelle.core.errors import N_, InvalidInputError, WrongPasswordError

# OWASP's first recommended Argon2id profile (19 MiB, 2 passes, 1 lane):
# a guess costs ~50 ms and 19 MiB, and deriving stays within the 64 MB a
# decryption may use in all.
DEFAULT_MEMORY_KIB = 19 * 1024
DEFAULT_ITERATIONS = 2
DEFAULT_LANES = 1
_NONCE_BYTES = 12
_CHECK_PLAINTEXT = b"scelle store v1"
_CHECK_CONTEXT = b"scelle:check"


@dataclass(frozen=True)
class KdfParameters:
    """How a sealing key is derived from a passphrase."""

    salt: bytes
    """16 random bytes, unique to the store."""
    memory_kib: int = DEFAULT_MEMORY_KIB
    """Argon2id memory cost in KiB."""
    iterations: int = DEFAULT_ITERATIONS
    """Argon2id passes."""
    lanes: int = DEFAULT_LANES
    """Argon2id parallelism."""

    @classmethod
    def fresh(cls) -> KdfParameters:
        return cls(salt=os.urandom(16))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": "argon2id",
            "salt": base64.b64encode(self.salt).decode(),
            "memory_kib": self.memory_kib,
            "iterations": self.iterations,
            "lanes": self.lanes,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KdfParameters:
        try:
            if data["name"] != "argon2id":
                raise InvalidInputError(
                    N_("unknown key derivation {name!r}"),
                    name=data["name"],
                )
            return cls(
                salt=base64.b64decode(data["salt"], validate=True),
                memory_kib=int(data["memory_kib"]),
                iterations=int(data["iterations"]),
                lanes=int(data["lanes"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInputError(
                N_("the key derivation settings are damaged"),
            ) from error


@dataclass(frozen=True)
class SealingKey:
    """A 256-bit key derived from the passphrase; seals and unseals blobs."""

    key: bytes = field(repr=False)

    @classmethod
    def derive(cls, passphrase: str, params: KdfParameters) -> SealingKey:
        kdf = Argon2id(
            salt=params.salt,
            length=32,
            iterations=params.iterations,
            lanes=params.lanes,
            memory_cost=params.memory_kib,
        )
        return cls(kdf.derive(passphrase.encode("utf-8")))

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        """Nonce followed by the AES-256-GCM ciphertext and tag; `context` is bound as AAD."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + AESGCM(self.key).encrypt(nonce, plaintext, context)

    def unseal(self, sealed: bytes, context: bytes) -> bytes:
        try:
            return AESGCM(self.key).decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], context)
        except (InvalidTag, ValueError):
            raise WrongPasswordError(
                N_("wrong store passphrase, or the store is damaged"),
            ) from None

    def check_value(self) -> bytes:
        """A sealed known value, kept beside the salt to recognise a wrong passphrase."""
        return self.seal(_CHECK_PLAINTEXT, _CHECK_CONTEXT)

    def verify(self, check_value: bytes) -> None:
        try:
            if self.unseal(check_value, _CHECK_CONTEXT) == _CHECK_PLAINTEXT:
                return
        except WrongPasswordError:
            pass
        raise WrongPasswordError(
            N_("wrong store passphrase"),
        )
