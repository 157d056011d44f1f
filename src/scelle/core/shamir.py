"""Shamir's secret sharing over GF(2^8), share for share what the npm package
`shamir-secret-sharing` (Privy; audited by Cure53 and Zellic) makes and reads, so that the
command and the browser page split and combine the same shares (tests/core/test_shamir.py
checks both ways with the package itself).

Each byte of the secret is the constant term of its own random polynomial of degree
k - 1 (its highest coefficient never zero, so that no fewer than k shares give it).
A share is one value of each polynomial at the share's x, then that x (1 to 255):
len(secret) + 1 bytes. The field is GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1.

Any k shares give the secret; k - 1 give every secret with the same probability. A
share's x is public; its values are not: each travels encrypted to one member.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from scelle.core.errors import N_, InvalidInputError

MAX_SHARES = 255
_POLYNOMIAL = 0x11B


def _tables() -> tuple[list[int], list[int]]:
    """Powers of the generator 3 and their logarithms."""
    exp, log = [0] * 510, [0] * 256
    value = 1
    for power in range(255):
        exp[power] = exp[power + 255] = value
        log[value] = power
        doubled = value << 1  # value * 3 = value * 2 + value
        if doubled & 0x100:
            doubled ^= _POLYNOMIAL
        value = doubled ^ value
    return exp, log


_EXP, _LOG = _tables()


def _mul(a: int, b: int) -> int:
    return 0 if a == 0 or b == 0 else _EXP[_LOG[a] + _LOG[b]]


def _div(a: int, b: int) -> int:
    return 0 if a == 0 else _EXP[_LOG[a] + 255 - _LOG[b]]


def split(secret: bytes, shares: int, threshold: int) -> list[bytes]:
    """`shares` shares of `secret`, any `threshold` of which give it back."""
    if not secret:
        raise InvalidInputError(N_("an empty secret cannot be shared"))
    if not 2 <= threshold <= shares <= MAX_SHARES:
        raise InvalidInputError(
            N_("a secret is shared among 2 to {most} members, at least 2 of them needed"),
            most=MAX_SHARES,
        )
    chosen = secrets.SystemRandom().sample(range(1, 256), shares)
    made = [bytearray(len(secret)) + bytes([x]) for x in chosen]
    for position, byte in enumerate(secret):
        coefficients = [byte, *(secrets.randbelow(256) for _ in range(threshold - 2))]
        coefficients.append(1 + secrets.randbelow(255))  # degree exactly threshold - 1
        for share, x in zip(made, chosen, strict=True):
            value = 0
            for coefficient in reversed(coefficients):  # Horner
                value = _mul(value, x) ^ coefficient
            share[position] = value
    return [bytes(share) for share in made]


def combine(shares: Sequence[bytes]) -> bytes:
    """The secret the shares give (Lagrange at 0). Fewer than the threshold give a value
    unrelated to it: the caller knows the secret by what it opens (a GCM tag)."""
    if not 2 <= len(shares) <= MAX_SHARES:
        raise InvalidInputError(N_("2 to {most} shares are combined"), most=MAX_SHARES)
    length = len(shares[0])
    xs = [share[-1] for share in shares if len(share) == length]
    if length < 2 or len(xs) != len(shares):
        raise InvalidInputError(N_("the shares are not of one secret: their lengths differ"))
    if 0 in xs or len(set(xs)) != len(xs):
        raise InvalidInputError(N_("the shares are not of one secret: two share a coordinate"))
    weights = []
    for i, xi in enumerate(xs):
        weight = 1
        for j, xj in enumerate(xs):
            if i != j:
                weight = _mul(weight, _div(xj, xi ^ xj))
        weights.append(weight)
    secret = bytearray(length - 1)
    for share, weight in zip(shares, weights, strict=True):
        for position in range(length - 1):
            secret[position] ^= _mul(share[position], weight)
    return bytes(secret)
