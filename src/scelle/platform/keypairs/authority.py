"""The platform's own keys: its CA and its receipt signer, in files beside the data.

Both private keys are kept as encrypted PKCS#8 (the secret key file is the
passphrase), in files created 0600 in `SCELLE_KEYS_DIR`. The embedded
default puts that folder inside the data folder; production points it
elsewhere, so that a copy of the data does not carry the keys.
"""

from __future__ import annotations

import functools
from pathlib import Path

from django.conf import settings

from scelle.core import certs
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


def _keys_dir() -> Path:
    return Path(settings.KEYS_DIR)


def _passphrase() -> bytes:
    return settings.SECRET_KEY.encode()


def _write(identity: Authority, files: tuple[str, str]) -> None:
    folder = ensure_private_dir(_keys_dir())
    write_private_file(folder / files[1], certs.certificate_pem(identity.certificate))
    write_private_file(folder / files[0], private_key_pem(identity.key, _passphrase()))


def ensure_platform_keys(clock: Clock) -> bool:
    """Create the CA and the receipt signer on the first start; True if created now."""
    folder = _keys_dir()
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
