"""The recipient-set fingerprint (RSF, "empreinte de l'ensemble des destinataires").

One short code for the certificates a tender's envelopes are encrypted to,
fixed at launch. The buyer publishes it in the tender notice (BOAMP, JOUE),
which the platform's operator does not control; every bidder's client
recomputes it from the certificates it actually encrypts to. A server that
adds or swaps a recipient changes the code, and a person comparing two
codes read aloud sees it.

    RSF = first 100 bits of SHA-256("scelle-rsf-v1" || sorted SHA-256 fingerprints)

written in Crockford's base32 (no I, L, O, U: nothing to confuse when read
aloud or typed) as five groups of four: `RSF 7KQ2-M9XD-4TPA-W3NE-B81C`.
100 bits: finding another set of certificates with the same code costs an
operator some 2^100 certificate generations.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from scelle.core.errors import N_, InvalidInputError

PREFIX = "RSF"
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_GROUPS = 5
_GROUP_LENGTH = 4
_BITS = 5 * _GROUPS * _GROUP_LENGTH
_DOMAIN = b"scelle-rsf-v1"
_COMMISSION_DOMAIN = b"scelle-rsf-v2"
_FINGERPRINT = re.compile(r"[0-9A-Fa-f]{2}(:?[0-9A-Fa-f]{2}){31}")
# What people type for the letters Crockford's base32 leaves out.
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def _fingerprint_bytes(fingerprint: str | bytes) -> bytes:
    if isinstance(fingerprint, bytes):
        if len(fingerprint) != 32:
            raise InvalidInputError(
                N_("a SHA-256 fingerprint has 32 bytes"),
            )
        return fingerprint
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise InvalidInputError(
            N_("{value!r} is not a SHA-256 fingerprint"),
            value=fingerprint[:100],
        )
    return bytes.fromhex(fingerprint.replace(":", ""))


def recipient_set_fingerprint(fingerprints: Iterable[str | bytes]) -> str:
    """The RSF of a set of certificates given by their SHA-256 fingerprints.

    Order and repetitions do not matter: it is the set that counts.
    """
    unique = sorted({_fingerprint_bytes(f) for f in fingerprints})
    if not unique:
        raise InvalidInputError(
            N_("a recipient set holds at least one certificate"),
        )
    return _written(hashlib.sha256(_DOMAIN + b"".join(unique)).digest())


def commission_set_fingerprint(
    backups: Iterable[str | bytes], members: Iterable[str | bytes], threshold: int
) -> str:
    """The RSF of a tender opened by a commission: its backup key pairs, its members' and
    k, each in its place, so that a member made a backup, another member or another k
    changes the code. Tenders without a commission keep `recipient_set_fingerprint`.

        RSF = first 100 bits of SHA-256("scelle-rsf-v2" || b || sorted backups
                                        || k || n || sorted members), b, k, n one byte each
    """
    kept = sorted({_fingerprint_bytes(f) for f in backups})
    named = sorted({_fingerprint_bytes(f) for f in members})
    if not kept or not 2 <= threshold <= len(named) <= 255 or set(kept) & set(named):
        raise InvalidInputError(
            N_(
                "a commission's recipient set holds backup key pairs, and 2 to 255 members "
                "who are not backups, at least 2 of them needed"
            )
        )
    return _written(
        hashlib.sha256(
            _COMMISSION_DOMAIN + bytes([len(kept)]) + b"".join(kept)
            + bytes([threshold, len(named)]) + b"".join(named)
        ).digest()
    )  # fmt: skip


def _written(digest: bytes) -> str:
    value = int.from_bytes(digest, "big") >> (256 - _BITS)
    symbols = [_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(_BITS // 5))]
    groups = [
        "".join(symbols[i : i + _GROUP_LENGTH]) for i in range(0, len(symbols), _GROUP_LENGTH)
    ]
    return f"{PREFIX} {'-'.join(groups)}"


def rsf_of_certificates(certificates: Iterable[x509.Certificate]) -> str:
    """The RSF of the certificates themselves."""
    return recipient_set_fingerprint(c.fingerprint(hashes.SHA256()) for c in certificates)


def normalise_rsf(text: str) -> str:
    """An RSF as a person typed it (any case, with or without "RSF", spaces or dashes)."""
    cleaned = re.sub(r"[\s\-_.]", "", text.upper())
    cleaned = cleaned.removeprefix(PREFIX).translate(_READ_AS)
    if len(cleaned) != _GROUPS * _GROUP_LENGTH or any(c not in _ALPHABET for c in cleaned):
        raise InvalidInputError(
            N_("{value!r} is not a recipient-set fingerprint"),
            hint=N_("It reads like RSF 7KQ2-M9XD-4TPA-W3NE-B81C, as printed in the tender notice."),
            value=text[:60],
        )
    groups = [cleaned[i : i + _GROUP_LENGTH] for i in range(0, len(cleaned), _GROUP_LENGTH)]
    return f"{PREFIX} {'-'.join(groups)}"
