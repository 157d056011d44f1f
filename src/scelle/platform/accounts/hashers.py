"""Password hashing: Argon2id at OWASP's first profile (19 MiB, 2 passes, 1 lane).

Django's default Argon2 takes 100 MiB and 8 lanes per hash: eight logins at
once would hold 800 MB, past the server's memory bound, and on two cores the
lanes only queue. 19 MiB and one lane is the profile the local store uses
too (core/sealing.py); hashes made with other parameters still verify and
are upgraded at the next login.
"""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class ScelleArgon2PasswordHasher(Argon2PasswordHasher):
    time_cost = 2
    memory_cost = 19 * 1024
    parallelism = 1
