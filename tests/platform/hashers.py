"""Argon2 with the smallest cost: the same code path, fast enough for a test suite."""

from __future__ import annotations

from scelle.platform.accounts.hashers import ScelleArgon2PasswordHasher


class FastArgon2PasswordHasher(ScelleArgon2PasswordHasher):
    time_cost = 1
    memory_cost = 64
    parallelism = 1
