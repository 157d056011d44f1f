"""The local store of a workstation: key pairs, private keys sealed at rest."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from scelle.keystore.store import KeyStore, PassphraseProvider, StoredKey, check_key_name


def default_home() -> Path:
    """`$SCELLE_HOME`, or the user data folder of this platform."""
    configured = os.environ.get("SCELLE_HOME")
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_data_dir("scelle", appauthor=False))


__all__ = ["KeyStore", "PassphraseProvider", "StoredKey", "check_key_name", "default_home"]
