"""The strength check for passwords that protect an exported key pair.

A .pfx travels by e-mail and USB stick; its password is all that stands
between a thief and every bid sealed to the key, and there is no recovery.
"""

from __future__ import annotations

import string

from scelle.core.errors import N_, WeakPasswordError
from scelle.core.text import storable

MIN_LENGTH = 12
PASSPHRASE_LENGTH = 20
"""From this length any mix of characters is accepted: a sentence is strong."""

# Patterns that make up most leaked passwords; a password made mostly of them
# has far less strength than its length suggests.
_COMMON_FRAGMENTS = (
    "password", "motdepasse", "azerty", "qwerty", "123456", "abcdef", "soleil",
    "bonjour", "marches", "admin", "secret", "scelle",
)  # fmt: skip


def _classes(password: str) -> int:
    groups = (
        any(char.islower() for char in password),
        any(char.isupper() for char in password),
        any(char.isdigit() for char in password),
        any(not char.isalnum() or char in string.punctuation for char in password),
    )
    return sum(groups)


def check_password_strength(password: str) -> None:
    """Raise `WeakPasswordError` saying why, or return for an acceptable password."""
    if not storable(password):
        raise WeakPasswordError(N_("the password holds characters no keyboard types"))
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(
            N_("the password is too short: at least {min_length} characters are required"),
            min_length=MIN_LENGTH,
        )
    if len(set(password)) < len(password) // 3 + 2:
        raise WeakPasswordError(
            N_("the password repeats the same few characters"),
        )
    lowered = password.lower()
    stripped = lowered
    for fragment in _COMMON_FRAGMENTS:
        stripped = stripped.replace(fragment, "")
    if len(stripped) < MIN_LENGTH // 2:
        raise WeakPasswordError(
            N_("the password is made of common words or sequences"),
        )
    if len(password) < PASSPHRASE_LENGTH and _classes(password) < 3:
        raise WeakPasswordError(
            N_(
                "the password needs three kinds of characters among lower case, upper case, "
                "digits and symbols, or at least {passphrase_length} characters"
            ),
            passphrase_length=PASSPHRASE_LENGTH,
        )
