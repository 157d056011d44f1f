"""The export password strength check."""

from __future__ import annotations

import pytest

from scelle.core.errors import WeakPasswordError
from scelle.core.passwords import check_password_strength


@pytest.mark.parametrize(
    "password",
    [
        "Export-Bi-cle-2026!",
        "Clé-été-Ωμέγα-2026",
        "correct horse battery staple",  # a long sentence needs no symbols
        "Marches7publics",
    ],
)
def test_strong_passwords_pass(password: str) -> None:
    check_password_strength(password)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Abc-123", "too short"),
        ("Password1234!", "common"),
        ("Azerty123456!", "common"),
        ("aaaaaaaaaaaA1!", "repeats"),
        ("onlylowercase", "three kinds"),
        ("ONLYUPPER1234", "three kinds"),
    ],
)
def test_weak_passwords_say_why(password: str, reason: str) -> None:
    with pytest.raises(WeakPasswordError, match=reason):
        check_password_strength(password)
