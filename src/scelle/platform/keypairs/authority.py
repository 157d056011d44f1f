"""The platform's own keys: its CA, its receipt signer and its transparency log's key,
in files beside the data.

Both private keys are kept as encrypted PKCS#8 (the secret key file is the
passphrase), in files created 0600 in `SCELLE_KEYS_DIR`. The embedded
default puts that folder inside the data folder; production points it
elsewhere, so that a copy of the data does not carry the keys.
"""

from __future__ import annotations

import functools
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.conf import settings

from scelle.core import certs, note
from scelle.core.authority import (
    Authority,
    create_authority,
    create_signing_identity,
    load_authority,
    private_key_pem,
)
from scelle.core.clock import Clock
from scelle.core.files import ensure_private_dir, write_private_file

CA_FILES = ("ca.key.pem", "ca.cert.pem")
SIGNER_FILES = ("receipt-signer.key.pem", "receipt-signer.cert.pem")
LOG_KEY_FILE = "transparency-log.key.pem"


def _keys_dir() -> Path:
    return Path(settings.KEYS_DIR)


def _passphrase() -> bytes:
    return settings.SECRET_KEY.encode()


def _write(identity: Authority, files: tuple[str, str]) -> None:
    folder = ensure_private_dir(_keys_dir())
    write_private_file(folder / files[1], certs.certificate_pem(identity.certificate))
    write_private_file(folder / files[0], private_key_pem(identity.key, _passphrase()))


def ensure_platform_keys(clock: Clock) -> bool:
    """Create the CA, the receipt signer and the log's key on the first start (the log's
    key also on the first start of a platform made before it); True if created now."""
    folder = _keys_dir()
    _ensure_log_key()
    if all((folder / file).is_file() for file in CA_FILES + SIGNER_FILES):
        return False
    name = settings.SCELLE_PLATFORM_NAME
    if not all((folder / file).is_file() for file in CA_FILES):
        _write(create_authority(f"{name} — autorité de la plateforme", now=clock()), CA_FILES)
    ca = _load(CA_FILES)
    signer = create_signing_identity(ca, f"{name} — accusés de réception", now=clock())
    _write(signer, SIGNER_FILES)
    platform_authority.cache_clear()
    receipt_signer.cache_clear()
    return True


def _load(files: tuple[str, str]) -> Authority:
    folder = _keys_dir()
    return load_authority(
        (folder / files[0]).read_bytes(), (folder / files[1]).read_bytes(), _passphrase()
    )


@functools.cache
def platform_authority() -> Authority:
    """The platform CA, loaded once per process."""
    return _load(CA_FILES)


@functools.cache
def receipt_signer() -> Authority:
    """The key that signs deposit receipts, loaded once per process."""
    return _load(SIGNER_FILES)


def _ensure_log_key() -> None:
    path = _keys_dir() / LOG_KEY_FILE
    if path.is_file():
        return
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(_passphrase()),
    )
    write_private_file(ensure_private_dir(_keys_dir()) / LOG_KEY_FILE, pem)
    log_signer.cache_clear()


@functools.cache
def log_signer() -> note.Signer:
    """The Ed25519 key that signs the transparency log's checkpoints, named by the log's
    origin (SCELLE_LOG_ORIGIN), loaded once per process."""
    key = serialization.load_pem_private_key(
        (_keys_dir() / LOG_KEY_FILE).read_bytes(), _passphrase()
    )
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise TypeError(LOG_KEY_FILE)
    return note.Signer(note.check_name(settings.SCELLE_LOG_ORIGIN), key)
