"""The local store of a workstation ("magasin de certificats").

Layout under the store's home (`$SCELLE_HOME`), folders 0700, files 0600:

    store.json              key derivation settings and a check value
    keys/<id>/meta.json     name, origin, exportable flag, creation time
    keys/<id>/key.sealed    the PKCS#8 private key sealed with the store key
    keys/<id>/cert.pem      the certificate, then its chain
    pending/<name>.sealed   work in progress that holds secrets (a deposit's content
                            keys until its receipt arrives), sealed like the keys
    .lock                   serialises changes between concurrent commands

A key pair's folder is written under a temporary name and renamed into
place, so a crash never leaves half a key pair behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from filelock import FileLock

from scelle.core import certs
from scelle.core.envelope import DecryptionKey
from scelle.core.errors import (
    N_,
    DuplicateKeyError,
    InvalidInputError,
    KeyNotFoundError,
    NotExportableError,
    ScelleError,
    StoreError,
)
from scelle.core.files import ensure_private_dir, write_private_file
from scelle.core.passwords import check_password_strength
from scelle.core.pkcs12 import KeyBundle
from scelle.core.sealing import KdfParameters, SealingKey

MAX_NAME_LENGTH = 64
_STORE_FILE = "store.json"
_STORE_VERSION = 1

PassphraseProvider = Callable[[bool], str]
"""Asked for the store passphrase; the argument is True when the store is being
created (ask twice, and the strength check applies)."""


class TokenKeys(Protocol):
    """A PKCS#11 token's key pairs, as the store uses them (keystore/token.py's `Token`)."""

    @property
    def label(self) -> str: ...

    @property
    def unlocked(self) -> bool: ...

    def unlock(self, pin: str | None = None) -> None: ...

    def close(self) -> None: ...

    def key_pairs(self) -> list[StoredKey]: ...

    def private_key(self, stored: StoredKey) -> rsa.RSAPrivateKey: ...

    def generate(
        self, name: str, common_name: str, *, bits: int, days: int, now: dt.datetime
    ) -> StoredKey: ...

    def replace_certificate(
        self, stored: StoredKey, certificate: x509.Certificate, chain: Sequence[x509.Certificate]
    ) -> StoredKey: ...

    def delete(self, stored: StoredKey) -> None: ...


@dataclass(frozen=True)
class StoredKey:
    """A key pair of the store, as listed: everything but the private key."""

    name: str
    """The name in the store, unique (case-insensitive)."""
    id: str
    """The folder name under keys/."""
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    """Issuer certificates, nearest first."""
    exportable: bool
    """False for key pairs imported with --not-exportable."""
    origin: str
    """"generated", "imported", or "token" (a key pair on a PKCS#11 token)."""
    created_at: dt.datetime
    token: str | None = None
    """For a key pair on a token: its RFC 7512 URI. Its private key never leaves it."""

    @property
    def self_signed(self) -> bool:
        return self.certificate.issuer == self.certificate.subject

    @property
    def cn(self) -> str:
        return certs.common_name(self.certificate.subject)

    @property
    def issuer(self) -> str:
        return certs.common_name(self.certificate.issuer)

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    @property
    def fingerprint_sha256(self) -> str:
        return certs.fingerprint_sha256(self.certificate)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cn": self.cn,
            "issuer": self.issuer,
            "not_before": self.certificate.not_valid_before_utc.isoformat(),
            "not_after": self.not_after.isoformat(),
            "fingerprint_sha256": self.fingerprint_sha256,
            "serial_number": format(self.certificate.serial_number, "X"),
            "key_size": self.certificate.public_key().key_size,  # type: ignore[union-attr]
            "exportable": self.exportable,
            "origin": self.origin,
            "created_at": self.created_at.isoformat(),
            "token": self.token,
        }


def check_key_name(name: str) -> str:
    """The name, stripped, or an error saying why it cannot name a key pair."""
    return certs.check_label(name, what="a key pair name", max_length=MAX_NAME_LENGTH)


@dataclass
class KeyStore:
    """The key pairs of this workstation, private keys sealed with the store passphrase."""

    home: Path
    passphrase: PassphraseProvider = field(repr=False)
    token: TokenKeys | None = None
    """A PKCS#11 token whose key pairs this store lists and uses beside its own, and where
    it generates new ones."""
    _sealing_key: SealingKey | None = field(default=None, init=False, repr=False)

    @property
    def _keys_dir(self) -> Path:
        return self.home / "keys"

    # --- reading ---------------------------------------------------------------

    def key_pairs(self) -> list[StoredKey]:
        """Every key pair, the token's included, sorted by name."""
        found = self.token.key_pairs() if self.token is not None else []
        return sorted(found + self.stored_key_pairs(), key=lambda key: key.name.casefold())

    def _known(self) -> list[StoredKey]:
        """The key pairs a new one must not clash with: the token's too, when it answers
        (a card out of its reader does not stop an import into the store)."""
        try:
            return self.key_pairs()
        except ScelleError:
            return self.stored_key_pairs()

    def stored_key_pairs(self) -> list[StoredKey]:
        """The key pairs of the store itself (not its token's), unsorted."""
        if not self._keys_dir.is_dir():
            return []
        return [
            self._read(folder)
            for folder in self._keys_dir.iterdir()
            if not folder.name.startswith(".") and (folder / "meta.json").is_file()
        ]

    def get(self, name: str) -> StoredKey:
        wanted = name.strip().casefold()
        for key in self.key_pairs():
            if key.name.casefold() == wanted:
                return key
        raise KeyNotFoundError(
            N_("no key pair named {name!r} in this workstation's store"),
            hint=N_("`scelle keys list` shows the key pairs of the store."),
            name=name,
        )

    def _read(self, folder: Path) -> StoredKey:
        try:
            meta = json.loads((folder / "meta.json").read_text("utf-8"))
            chain = certs.load_pem_certificates((folder / "cert.pem").read_bytes())
            return StoredKey(
                name=str(meta["name"]),
                id=folder.name,
                certificate=chain[0],
                chain=tuple(chain[1:]),
                exportable=bool(meta["exportable"]),
                origin=str(meta["origin"]),
                created_at=dt.datetime.fromisoformat(meta["created_at"]),
            )
        except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
            raise StoreError(
                N_("the store entry {folder} is damaged: {error}"),
                folder=folder,
                error=error,
            ) from error

    def private_key(self, name: str) -> rsa.RSAPrivateKey:
        """The private key of `name`; asks for the store passphrase."""
        stored = self.get(name)
        if stored.token is not None:
            return self._token().private_key(stored)
        sealed = (self._keys_dir / stored.id / "key.sealed").read_bytes()
        return certs.private_key_from_pkcs8(self.unlock().unseal(sealed, self._context(stored.id)))

    def decryption_keys(self, names: Sequence[str] | None = None) -> list[DecryptionKey]:
        """The keys to try on an envelope: the named ones, or every key pair of the store."""
        chosen = [self.get(name) for name in names] if names else self.key_pairs()
        if not chosen:
            raise KeyNotFoundError(
                N_("this workstation's store holds no key pair"),
                hint=N_("Import one with `scelle keys import FILE.pfx`, or pass --pfx."),
            )
        return [DecryptionKey(self.private_key(key.name), key.certificate) for key in chosen]

    def export_bundle(self, name: str) -> KeyBundle:
        """What `keys export` writes; refuses key pairs imported as not exportable."""
        stored = self.get(name)
        if stored.token is not None:
            raise NotExportableError(
                N_(
                    "the key pair {name!r} lives on a token: its private key cannot leave it, "
                    "so it cannot be exported"
                ),
                hint=N_(
                    "Carry the token itself, or make a key pair on the other workstation and "
                    "publish it too."
                ),
                name=stored.name,
            )
        if not stored.exportable:
            raise NotExportableError(
                N_("the key pair {name!r} was imported as not exportable"),
                name=stored.name,
            )
        return KeyBundle(
            self.private_key(stored.name), stored.certificate, stored.chain, stored.name
        )

    # --- changing --------------------------------------------------------------

    def check_name_free(self, name: str) -> None:
        """Refuse a name already taken (names are compared case-insensitively)."""
        wanted = check_key_name(name).casefold()
        for existing in self._known():
            if existing.name.casefold() == wanted:
                raise DuplicateKeyError(
                    N_("a key pair named {name!r} is already in the store"),
                    hint=N_("Choose another name (--name)."),
                    name=existing.name,
                )

    def add(
        self,
        name: str,
        private_key: rsa.RSAPrivateKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
        *,
        exportable: bool = True,
        origin: str,
        now: dt.datetime,
    ) -> StoredKey:
        """Store a new key pair; refuses a name or a certificate already there."""
        name = check_key_name(name)
        if not certs.key_matches_certificate(private_key, certificate):
            raise InvalidInputError(
                N_("the certificate does not belong to the private key"),
            )
        sealing_key = self.unlock()
        with self._locked():
            self.check_name_free(name)
            for existing in self._known():
                if existing.certificate == certificate:
                    raise DuplicateKeyError(
                        N_("this key pair is already in the store as {name!r}"),
                        name=existing.name,
                    )
            key_id = uuid.uuid4().hex
            staging = ensure_private_dir(self._keys_dir / f".new-{key_id}")
            try:
                meta = {
                    "name": name,
                    "exportable": exportable,
                    "origin": origin,
                    "created_at": now.isoformat(),
                }
                write_private_file(
                    staging / "key.sealed",
                    sealing_key.seal(
                        certs.private_key_to_pkcs8(private_key), self._context(key_id)
                    ),
                )
                write_private_file(
                    staging / "cert.pem", certs.certificates_pem([certificate, *chain])
                )
                write_private_file(
                    staging / "meta.json", json.dumps(meta, ensure_ascii=False).encode()
                )
                staging.rename(self._keys_dir / key_id)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return self._read(self._keys_dir / key_id)

    def replace_certificate(
        self, name: str, certificate: x509.Certificate, chain: Sequence[x509.Certificate] = ()
    ) -> StoredKey:
        """Give a key pair a new certificate for the same key (the platform CA's, once
        published): envelopes name their recipient by issuer and serial number, so the
        store must hold the certificate the bidders encrypt to."""
        on_token = self.get(name)
        if on_token.token is not None:
            return self._token().replace_certificate(on_token, certificate, chain)
        with self._locked():
            stored = self.get(name)
            if stored.certificate.public_key() != certificate.public_key():
                raise InvalidInputError(
                    N_("the new certificate does not belong to the key pair {name!r}"),
                    name=stored.name,
                )
            folder = self._keys_dir / stored.id
            write_private_file(
                folder / "cert.pem", certs.certificates_pem([certificate, *chain]), overwrite=True
            )
            return self._read(folder)

    def delete(self, name: str) -> StoredKey:
        """Remove a key pair for good; asks for the store passphrase (the token's PIN) first."""
        stored = self.get(name)
        if stored.token is not None:
            self._token().delete(stored)
            return stored
        self.unlock()
        with self._locked():
            folder = self._keys_dir / stored.id
            # Rename first so the key pair disappears at once, even if the
            # removal of its files is interrupted.
            doomed = self._keys_dir / f".deleted-{stored.id}"
            folder.rename(doomed)
            shutil.rmtree(doomed)
        return stored

    def _token(self) -> TokenKeys:
        if self.token is None:
            raise KeyNotFoundError(
                N_("the key pair is on a token, and no token is set"),
                hint=N_("Name the token with --token pkcs11:token=…"),
            )
        return self.token

    # --- sealed work in progress ---------------------------------------------------

    def _pending(self, name: str) -> Path:
        if not name.isalnum():
            raise InvalidInputError(
                N_("{name!r} cannot name a pending record"),
                name=name,
            )
        return self.home / "pending" / f"{name}.sealed"

    def save_pending(self, name: str, data: bytes) -> None:
        """Keep `data` sealed with the store key (0600, written atomically)."""
        sealed = self.unlock().seal(data, f"scelle:pending:{name}".encode())
        ensure_private_dir(self.home / "pending")
        write_private_file(self._pending(name), sealed, overwrite=True)

    def load_pending(self, name: str) -> bytes | None:
        """The record saved under `name`, or None."""
        path = self._pending(name)
        if not path.is_file():
            return None
        return self.unlock().unseal(path.read_bytes(), f"scelle:pending:{name}".encode())

    def delete_pending(self, name: str) -> None:
        self._pending(name).unlink(missing_ok=True)

    # --- tenders launched from this workstation ----------------------------------

    def _tender_record(self, platform: str, reference: str) -> Path:
        key = hashlib.sha256(f"{platform}\n{reference.casefold()}".encode()).hexdigest()[:32]
        return self.home / "tenders" / f"{key}.json"

    def save_tender_record(
        self, platform: str, reference: str, rsf: str, fingerprints: Sequence[str]
    ) -> None:
        """Keep the recipient set of a tender this workstation launched: the opening
        checks envelopes against it rather than against what the server says later."""
        ensure_private_dir(self.home / "tenders")
        document = {
            "platform": platform,
            "tender": reference,
            "rsf": rsf,
            "fingerprints": sorted(fingerprints),
        }
        write_private_file(
            self._tender_record(platform, reference),
            json.dumps(document, indent=2).encode(),
            overwrite=True,
        )

    def tender_record(self, platform: str, reference: str) -> tuple[str, list[str]] | None:
        """(RSF, fingerprints) recorded at launch, or None when this workstation did not."""
        path = self._tender_record(platform, reference)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text("utf-8"))
            return str(data["rsf"]), [str(f) for f in data["fingerprints"]]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StoreError(
                N_("{path} is damaged"),
                path=path,
            ) from error

    # --- the store passphrase --------------------------------------------------

    @staticmethod
    def _context(key_id: str) -> bytes:
        # Binds each sealed key to its folder: swapping files between entries fails.
        return f"scelle:key:{key_id}".encode()

    def unlock(self) -> SealingKey:
        """The sealing key, derived once per command; creates the store on first use."""
        if self._sealing_key is not None:
            return self._sealing_key
        store_file = self.home / _STORE_FILE
        if store_file.is_file():
            try:
                data = json.loads(store_file.read_text("utf-8"))
                params = KdfParameters.from_json(data["kdf"])
                check = bytes.fromhex(data["check"])
            except (OSError, ValueError, KeyError, TypeError) as error:
                raise StoreError(
                    N_("{store_file} is damaged"),
                    store_file=store_file,
                ) from error
            key = SealingKey.derive(self.passphrase(False), params)
            key.verify(check)
        else:
            passphrase = self.passphrase(True)
            check_password_strength(passphrase)
            params = KdfParameters.fresh()
            key = SealingKey.derive(passphrase, params)
            ensure_private_dir(self.home)
            ensure_private_dir(self._keys_dir)
            document = {
                "version": _STORE_VERSION,
                "kdf": params.to_json(),
                "check": key.check_value().hex(),
            }
            write_private_file(store_file, json.dumps(document, indent=2).encode())
        self._sealing_key = key
        return key

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # filelock: flock on POSIX, msvcrt.locking on Windows (buyers' workstations).
        ensure_private_dir(self.home)
        ensure_private_dir(self._keys_dir)
        with FileLock(self.home / ".lock", mode=0o600):
            yield
