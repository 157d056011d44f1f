"""The platform's settings for the test suite: a throw-away data folder, and
PostgreSQL instead of SQLite when SCELLE_TEST_DATABASE_URL names one."""

from __future__ import annotations

import os
import tempfile

os.environ["SCELLE_DATA_DIR"] = tempfile.mkdtemp(prefix="scelle-test-data-")
os.environ.pop("SCELLE_KEYS_DIR", None)
os.environ.pop("SCELLE_SECRET_KEY_FILE", None)
if os.environ.get("SCELLE_TEST_DATABASE_URL"):
    os.environ["SCELLE_DATABASE_URL"] = os.environ["SCELLE_TEST_DATABASE_URL"]
else:
    os.environ.pop("SCELLE_DATABASE_URL", None)

from scelle.platform.settings import *  # noqa: F403

# Argon2 at its production cost makes every test login take 50 ms; the
# hasher is the same, only cheaper.
PASSWORD_HASHERS = ["tests.platform.hashers.FastArgon2PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "scelle.platform.sqlite":  # noqa: F405
    # In memory, as for Django's own SQLite backend; said outright because pytest-django
    # (each xdist worker its own database) only recognises that backend by its name.
    DATABASES["default"]["TEST"] = {"NAME": ":memory:"}  # noqa: F405
