"""Key pairs on a PKCS#11 token (smart card, USB token, HSM), through python-pkcs11.

A token's private key never leaves it: it is generated there, sensitive and not
extractable, and every private operation is the token's. `TokenRSAKey` is such a
key seen as cryptography's `RSAPrivateKey`, so that the envelope reader opens
envelopes with it as with a key of the store: RSA-OAEP on the token when its
mechanism takes the envelope's hash (many tokens, SoftHSM2 among them, know
OAEP with SHA-1 only), otherwise raw RSA on the token and the OAEP decoding
here (RFC 8017, 7.1.2), without a branch on what the decoding finds.

Tokens are named by RFC 7512 URIs (`pkcs11:token=Carte%20agent;object=BICLE`);
the PKCS#11 module is a file, given by the caller (a setting), never guessed
from the URI. The PIN is asked for each use, never written anywhere.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import secrets
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pkcs11
from asn1crypto import core as asn1_core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo, Prehashed
from pkcs11 import Attribute, CertificateType, KeyType, Mechanism, ObjectClass

from scelle.core import certs
from scelle.core.errors import (
    N_,
    DuplicateKeyError,
    InvalidInputError,
    KeyNotFoundError,
    UnsupportedKeyError,
)
from scelle.core.pkcs12 import usable_name
from scelle.keystore.store import StoredKey, check_key_name

URI_SCHEME = "pkcs11:"
MODULE_VARIABLE = "SCELLE_PKCS11_MODULE"
DEFAULT_MODULES: dict[str, tuple[str, ...]] = {
    "linux": (
        "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
        "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
        "/usr/lib64/opensc-pkcs11.so",
        "/usr/lib/opensc-pkcs11.so",
    ),
    "darwin": (
        "/Library/OpenSC/lib/opensc-pkcs11.so",
        "/opt/homebrew/lib/opensc-pkcs11.so",
        "/usr/local/lib/opensc-pkcs11.so",
    ),
    "win32": (
        "C:\\Windows\\System32\\opensc-pkcs11.dll",
        "C:\\Program Files\\OpenSC Project\\OpenSC\\pkcs11\\opensc-pkcs11.dll",
    ),
}
"""Where OpenSC, the module most smart cards work with, is installed on each system; a
token of another maker (an HSM, a vendor's card) names its own in SCELLE_PKCS11_MODULE."""
_PATH_ATTRIBUTES = {"token", "object", "id", "manufacturer", "model", "serial", "type"}
_OAEP_HASHES: dict[str, tuple[Mechanism, Any]] = {
    "sha1": (Mechanism.SHA_1, pkcs11.MGF.SHA1),
    "sha256": (Mechanism.SHA256, pkcs11.MGF.SHA256),
    "sha384": (Mechanism.SHA384, pkcs11.MGF.SHA384),
    "sha512": (Mechanism.SHA512, pkcs11.MGF.SHA512),
}
_REFUSED_BY_TOKEN = (
    pkcs11.exceptions.MechanismInvalid,
    pkcs11.exceptions.MechanismParamInvalid,
    pkcs11.exceptions.ArgumentsBad,
    pkcs11.exceptions.FunctionNotSupported,
)


@dataclass(frozen=True)
class TokenURI:
    """What an RFC 7512 URI names: a token (by label, serial…) and an object on it."""

    token: str | None = None
    object: str | None = None
    id: bytes | None = None
    serial: str | None = None

    @classmethod
    def parse(cls, text: str) -> TokenURI:
        value = text.strip()
        if not value.lower().startswith(URI_SCHEME):
            raise InvalidInputError(
                N_("{uri!r} is not a PKCS#11 URI such as pkcs11:token=MyCard;object=MyKey"),
                uri=text,
            )
        path = value[len(URI_SCHEME) :].split("?", 1)[0]
        found: dict[str, str] = {}
        for part in filter(None, path.split(";")):
            name, sep, raw = part.partition("=")
            if not sep or name not in _PATH_ATTRIBUTES or name in found:
                raise InvalidInputError(
                    N_("{uri!r}: {part!r} is not an attribute Scellé reads in a PKCS#11 URI"),
                    uri=text,
                    part=part,
                )
            found[name] = raw
        identifier = urllib.parse.unquote_to_bytes(found["id"]) if "id" in found else None
        return cls(
            token=urllib.parse.unquote(found["token"]) if "token" in found else None,
            object=urllib.parse.unquote(found["object"]) if "object" in found else None,
            id=identifier,
            serial=urllib.parse.unquote(found["serial"]) if "serial" in found else None,
        )

    def with_object(self, label: str) -> TokenURI:
        return TokenURI(self.token, label, self.id, self.serial)

    def __str__(self) -> str:
        parts = []
        if self.token is not None:
            parts.append(f"token={urllib.parse.quote(self.token, safe='')}")
        if self.serial is not None:
            parts.append(f"serial={urllib.parse.quote(self.serial, safe='')}")
        if self.object is not None:
            parts.append(f"object={urllib.parse.quote(self.object, safe='')}")
        if self.id is not None:
            parts.append("id=" + "".join(f"%{byte:02X}" for byte in self.id))
        return URI_SCHEME + ";".join(parts)


def module_path(environ: Mapping[str, str]) -> str:
    """The PKCS#11 module to load: SCELLE_PKCS11_MODULE, else OpenSC where it is usually
    installed on this system."""
    configured = environ.get(MODULE_VARIABLE, "").strip()
    if configured:
        return configured
    system = "linux" if sys.platform.startswith("linux") else sys.platform
    for candidate in DEFAULT_MODULES.get(system, ()):
        if Path(candidate).is_file():
            return candidate
    raise InvalidInputError(
        N_("no PKCS#11 module found on this workstation"),
        hint=N_("Set SCELLE_PKCS11_MODULE to your token's module (see the README)."),
    )


_LIBRARIES: dict[str, Any] = {}
_LOADING = threading.Lock()
_TOKEN_CALLS = threading.RLock()
"""Modules are initialised without locking callbacks (python-pkcs11 passes none), so the
PKCS#11 standard asks the application not to call a module from two threads at once."""


def _library(module: str) -> Any:  # noqa: ANN401 - python-pkcs11's lib has no types
    """The module loaded once per process: a second load would finalise the first, and
    close every session open on it."""
    with _LOADING:
        if module not in _LIBRARIES:
            try:
                _LIBRARIES[module] = pkcs11.lib(module)
            except (RuntimeError, OSError, pkcs11.exceptions.PKCS11Error):
                raise InvalidInputError(
                    N_("cannot load the PKCS#11 module {module}"),
                    hint=N_("Set SCELLE_PKCS11_MODULE to your token's module (see the README)."),
                    module=module,
                ) from None
        return _LIBRARIES[module]


def _find_token(module: str, uri: TokenURI) -> Any:  # noqa: ANN401
    try:
        return _library(module).get_token(token_label=uri.token, token_serial=uri.serial)
    except (pkcs11.exceptions.NoSuchToken, pkcs11.exceptions.MultipleTokensReturned):
        raise KeyNotFoundError(
            N_("no single token matches {uri}"),
            hint=N_("Is the card in its reader? `p11tool --list-tokens` names the tokens."),
            uri=str(uri),
        ) from None
    except pkcs11.exceptions.PKCS11Error:
        raise InvalidInputError(N_("the token {uri} does not answer"), uri=str(uri)) from None


def _log_in(token: Any, pin: str, *, write: bool) -> Any:  # noqa: ANN401
    try:
        return token.open(user_pin=pin, rw=write)
    except pkcs11.exceptions.UserAlreadyLoggedIn:
        # PKCS#11 logs in an application, not a session: another session of this process
        # did, with the PIN, and every new session shares that login.
        return token.open(rw=write)
    except (pkcs11.exceptions.PinIncorrect, pkcs11.exceptions.PinLenRange):
        raise InvalidInputError(N_("wrong PIN for the token {token}"), token=token.label) from None
    except pkcs11.exceptions.PinLocked:
        raise InvalidInputError(
            N_("the token {token} is locked: too many wrong PINs"), token=token.label
        ) from None


@contextlib.contextmanager
def session(module: str, uri: TokenURI, pin: str, *, write: bool = False) -> Iterator[Any]:
    """A logged-in session on the token `uri` names (its only token when it names none)."""
    with _log_in(_find_token(module, uri), pin, write=write) as live:
        yield live


PinProvider = Callable[[str], str]
"""Asked for a token's PIN; the argument is the token's label."""


class Token:
    """The key pairs of one token, seen as the store sees its own (`StoredKey`).

    Listing reads the token's public objects (certificates and public keys: no PIN).
    The first private operation logs in with the PIN `pin` gives and keeps that session
    until `close()`: a smart card asks its PIN once per use, not once per envelope.
    """

    def __init__(self, module: str, uri: TokenURI, pin: PinProvider) -> None:
        self.module = module
        self.uri = TokenURI(uri.token, None, None, uri.serial)
        self.pin = pin
        self._live: Any = None

    @property
    def label(self) -> str:
        return self.uri.token or self.uri.serial or str(self.uri)

    @property
    def unlocked(self) -> bool:
        return self._live is not None

    def unlock(self, pin: str | None = None) -> None:
        """Log in (with `pin`, else the provider's), once."""
        with self._calling():
            if self._live is None:
                token = _find_token(self.module, self.uri)
                self._live = _log_in(
                    token, pin if pin is not None else self.pin(token.label), write=True
                )

    def close(self) -> None:
        with _TOKEN_CALLS:
            if self._live is not None:
                with contextlib.suppress(pkcs11.exceptions.PKCS11Error):
                    self._live.close()
                self._live = None

    @contextlib.contextmanager
    def _calling(self) -> Iterator[None]:
        """One call to the token at a time; a token that fails (pulled out of its reader,
        its session lost) is said in one sentence, and its session dropped."""
        with _TOKEN_CALLS:
            try:
                yield
            except pkcs11.exceptions.PKCS11Error as error:
                self.close()
                raise InvalidInputError(
                    N_("the token {token} stopped answering ({error}): is it in its reader?"),
                    token=self.label,
                    error=type(error).__name__,
                ) from None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Any]:
        """A session for public objects: the logged-in one, else a fresh one."""
        with self._calling():
            if self._live is not None:
                yield self._live
                return
            with _find_token(self.module, self.uri).open() as live:
                yield live

    def key_pairs(self) -> list[StoredKey]:
        """Each RSA key pair of the token that has its certificate there (the private key
        itself is seen only after the PIN: using one that is not there says so)."""
        with self._reading() as live:
            certificates = [
                (bytes(item[Attribute.ID] or b""), str(item[Attribute.LABEL] or ""),
                 x509.load_der_x509_certificate(bytes(item[Attribute.VALUE])))
                for item in live.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE})
            ]  # fmt: skip
            public_keys = {
                bytes(item.id or b""): _public_key(item)
                for item in live.get_objects(
                    {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.RSA}
                )
            }
        found: dict[bytes, StoredKey] = {}
        for identifier, label, certificate in certificates:
            # Paired by CKA_ID, as PKCS#11 applications do. Many cards keep no public key
            # object (the certificate holds it); where there is one, it must match.
            public = public_keys.get(identifier)
            if not identifier or (public is not None and certificate.public_key() != public):
                continue
            if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
                continue
            issuers = tuple(c for _i, _l, c in certificates if c.subject == certificate.issuer)
            stored = StoredKey(
                name=_name_of(label, certificate),
                id="token-" + identifier.hex(),
                certificate=certificate,
                chain=tuple(c for c in issuers if c != certificate),
                exportable=False,
                origin="token",
                created_at=certificate.not_valid_before_utc,
                token=str(TokenURI(self.uri.token, label or None, identifier, self.uri.serial)),
            )
            kept = found.get(identifier)
            # A certificate from an authority wins over a self-signed one, a newer over an
            # older: the one bidders encrypt to.
            if kept is None or (not stored.self_signed, stored.created_at) > (
                not kept.self_signed,
                kept.created_at,
            ):
                found[identifier] = stored
        return list(found.values())

    def private_key(self, stored: StoredKey) -> TokenRSAKey:
        """The key pair's private key, on the token (the PIN is asked the first time)."""
        identifier = _identifier_of(stored)
        self.unlock()
        with self._calling():
            try:
                private = self._live.get_key(object_class=ObjectClass.PRIVATE_KEY, id=identifier)
            except (pkcs11.exceptions.NoSuchKey, pkcs11.exceptions.MultipleObjectsReturned):
                raise KeyNotFoundError(
                    N_("the token {token} holds no single private key for {name!r}"),
                    token=self.label,
                    name=stored.name,
                ) from None
        return TokenRSAKey(private, stored.certificate.public_key(), lock=_TOKEN_CALLS)  # type: ignore[arg-type]

    def generate(
        self, name: str, common_name: str, *, bits: int, days: int, now: dt.datetime
    ) -> StoredKey:
        """A key pair made on the token, with a self-signed certificate (signed there)
        stored beside it until the platform CA's replaces it."""
        name = check_key_name(name)
        if any(key.name.casefold() == name.casefold() for key in self.key_pairs()):
            raise DuplicateKeyError(
                N_("the token {token} already holds a key pair named {name!r}"),
                hint=N_("Choose another name (--name)."),
                token=self.label,
                name=name,
            )
        self.unlock()
        with self._calling():
            try:
                key = generate(self._live, name, bits=bits)
            except pkcs11.exceptions.PKCS11Error as error:
                raise UnsupportedKeyError(
                    N_("the token {token} cannot make an RSA-{bits} key pair ({error})"),
                    token=self.label,
                    bits=bits,
                    error=type(error).__name__,
                ) from None
            try:
                certificate = certs.self_signed_certificate(key, common_name, days=days, now=now)
                store_certificates(self._live, key, certificate)
            except BaseException:
                _destroy(self._live, key.identifier)
                raise
        return self._stored(key.identifier)

    def replace_certificate(
        self, stored: StoredKey, certificate: x509.Certificate, chain: Sequence[x509.Certificate]
    ) -> StoredKey:
        """The platform CA's certificate in place of the key pair's, its own beside it."""
        identifier = _identifier_of(stored)
        self.unlock()
        with self._calling():
            key = TokenRSAKey(
                self._live.get_key(object_class=ObjectClass.PRIVATE_KEY, id=identifier),
                stored.certificate.public_key(),  # type: ignore[arg-type]
            )
            store_certificates(self._live, key, certificate, chain)
            for old in list(
                self._live.get_objects(
                    {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.ID: identifier}
                )
            ):
                if bytes(old[Attribute.VALUE]) != certificate.public_bytes(
                    serialization.Encoding.DER
                ):
                    old.destroy()
        return self._stored(identifier)

    def delete(self, stored: StoredKey) -> None:
        """The key pair and its certificates off the token, for good."""
        identifier = _identifier_of(stored)
        self.unlock()
        with self._calling():
            _destroy(self._live, identifier)

    def _stored(self, identifier: bytes) -> StoredKey:
        for key in self.key_pairs():
            if _identifier_of(key) == identifier:
                return key
        raise KeyNotFoundError(N_("the key pair vanished from the token {token}"), token=self.label)


def _identifier_of(stored: StoredKey) -> bytes:
    if stored.token is None:
        raise KeyNotFoundError(N_("{name!r} is not a key pair on a token"), name=stored.name)
    identifier = TokenURI.parse(stored.token).id
    if not identifier:
        raise KeyNotFoundError(N_("{name!r} is not a key pair on a token"), name=stored.name)
    return identifier


def _name_of(label: str, certificate: x509.Certificate) -> str:
    """The label as a store name, else the certificate's CN."""
    try:
        return check_key_name(usable_name(label.encode()) or "")
    except InvalidInputError:
        return check_key_name(certs.common_name(certificate.subject)[:64] or "token")


def _destroy(live: Any, identifier: bytes) -> None:  # noqa: ANN401
    for kind in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY, ObjectClass.CERTIFICATE):
        for item in list(live.get_objects({Attribute.CLASS: kind, Attribute.ID: identifier})):
            item.destroy()


def generate(live: Any, label: str, *, bits: int = 3072) -> TokenRSAKey:  # noqa: ANN401
    """A key pair made on the token: the private key sensitive, never extractable; a random
    CKA_ID of its own ties it to its certificate (a label may be used again, an id not)."""
    identifier = secrets.token_bytes(16)
    public, private = live.generate_keypair(
        KeyType.RSA,
        bits,
        store=True,
        label=label,
        id=identifier,
        public_template={Attribute.ENCRYPT: True, Attribute.VERIFY: True, Attribute.PRIVATE: False},
        private_template={
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.DECRYPT: True,
            Attribute.SIGN: True,
            Attribute.PRIVATE: True,
        },
    )
    return TokenRSAKey(private, _public_key(public))


def find(live: Any, label: str) -> TokenRSAKey:  # noqa: ANN401
    """The RSA key pair labelled `label` on the token."""
    try:
        private = live.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        public = live.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
    except (pkcs11.exceptions.NoSuchKey, pkcs11.exceptions.MultipleObjectsReturned):
        raise KeyNotFoundError(N_("no single key pair {label} on the token"), label=label) from None
    if private.key_type != KeyType.RSA:
        raise UnsupportedKeyError(N_("the key pair {label} on the token is not RSA"), label=label)
    return TokenRSAKey(private, _public_key(public))


def store_certificates(
    live: Any,  # noqa: ANN401
    key: TokenRSAKey,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
) -> None:
    """The key pair's certificate beside it on the token (same label and id, as every
    PKCS#11 application expects), and its issuers (the platform CA's) after it, each once."""
    if not certs.key_matches_certificate(key, certificate):
        raise InvalidInputError(
            N_("the certificate does not belong to the key pair {label}"), label=key.label
        )
    for stored, label, identifier in (
        (certificate, key.label, key.identifier),
        *((issuer, certs.common_name(issuer.subject), b"") for issuer in chain),
    ):
        der = stored.public_bytes(serialization.Encoding.DER)
        existing = live.get_objects(
            {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.VALUE: der}
        )
        if any(True for _found in existing):
            continue
        live.create_object(
            {
                Attribute.CLASS: ObjectClass.CERTIFICATE,
                Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: False,
                Attribute.LABEL: label,
                Attribute.ID: identifier,
                Attribute.SUBJECT: stored.subject.public_bytes(),
                Attribute.ISSUER: stored.issuer.public_bytes(),
                Attribute.SERIAL_NUMBER: _der_integer(stored.serial_number),
                Attribute.VALUE: der,
            }
        )


def certificates_on(live: Any) -> list[x509.Certificate]:  # noqa: ANN401
    """Every X.509 certificate the token holds."""
    found = live.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE})
    return [x509.load_der_x509_certificate(bytes(item[Attribute.VALUE])) for item in found]


def _der_integer(value: int) -> bytes:
    """A certificate's serial number as PKCS#11 stores it: a DER INTEGER."""
    return bytes(asn1_core.Integer(value).dump())


def _public_key(public: Any) -> rsa.RSAPublicKey:  # noqa: ANN401
    modulus = int.from_bytes(public[Attribute.MODULUS], "big")
    exponent = int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big")
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def _mgf1(seed: bytes, length: int, name: str) -> bytes:
    out = b"".join(
        hashlib.new(name, seed + counter.to_bytes(4, "big")).digest()
        for counter in range(-(-length // hashlib.new(name).digest_size))
    )
    return out[:length]


def oaep_decode(encoded: bytes, size: int, name: str, label: bytes) -> bytes:
    """RFC 8017, 7.1.2, step 3: the message in an OAEP-encoded block `encoded` of `size`
    bytes (raw RSA's output), or ValueError. Whatever is wrong, the same work is done and
    the same error raised: no timing or message tells which check failed."""
    h_len = hashlib.new(name).digest_size
    if size < 2 * h_len + 2:
        raise ValueError("decryption failed")
    block = encoded.rjust(size, b"\x00")[-size:]
    masked_seed, masked_db = block[1 : 1 + h_len], block[1 + h_len :]
    seed = bytes(a ^ b for a, b in zip(masked_seed, _mgf1(masked_db, h_len, name), strict=True))
    db = bytes(a ^ b for a, b in zip(masked_db, _mgf1(seed, size - h_len - 1, name), strict=True))
    good = hmac.compare_digest(db[:h_len], hashlib.new(name, label).digest()) & (block[0] == 0)
    # Find the 0x01 after the zero padding, looking at every byte whatever is found.
    looking, start, bad_padding = 1, 0, 0
    for position in range(h_len, len(db)):
        byte = db[position]
        is_one, is_zero = int(byte == 1), int(byte == 0)
        start |= position * (looking & is_one)
        bad_padding |= looking & (1 - is_one) & (1 - is_zero)
        looking &= 1 - is_one
    if not (good & (1 - looking) & (1 - bad_padding)):
        raise ValueError("decryption failed")
    return db[start + 1 :]


class TokenRSAKey(rsa.RSAPrivateKey):
    """An RSA private key that stays on its token: decrypt and sign happen there."""

    def __init__(
        self,
        private: Any,  # noqa: ANN401
        public: rsa.RSAPublicKey,
        *,
        lock: contextlib.AbstractContextManager[Any] | None = None,
    ) -> None:
        self._private = private
        self._public = public
        self._lock = lock if lock is not None else contextlib.nullcontext()

    @property
    def label(self) -> str:
        return str(self._private.label)

    @property
    def identifier(self) -> bytes:
        """CKA_ID: what ties the key pair to its certificate on the token."""
        return bytes(self._private.id)

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def decrypt(self, ciphertext: bytes, padding_: padding.AsymmetricPadding) -> bytes:
        """As cryptography's: ValueError for anything that does not decrypt."""
        with self._lock:
            return self._decrypt(ciphertext, padding_)

    def _decrypt(self, ciphertext: bytes, padding_: padding.AsymmetricPadding) -> bytes:
        size = (self.key_size + 7) // 8
        try:
            if isinstance(padding_, padding.PKCS1v15):
                return bytes(self._private.decrypt(ciphertext, mechanism=Mechanism.RSA_PKCS))
            if not isinstance(padding_, padding.OAEP):
                raise ValueError("decryption failed")
            name = padding_.algorithm.name
            mgf_algorithm = getattr(padding_.mgf, "_algorithm", None)  # cryptography's own
            label = getattr(padding_, "_label", None) or b""
            if name not in _OAEP_HASHES or getattr(mgf_algorithm, "name", None) != name:
                raise ValueError("decryption failed")
            mechanism, mgf = _OAEP_HASHES[name]
            try:
                return bytes(
                    self._private.decrypt(
                        ciphertext,
                        mechanism=Mechanism.RSA_PKCS_OAEP,
                        mechanism_param=(mechanism, mgf, label or None),
                    )
                )
            except _REFUSED_BY_TOKEN:
                raw = bytes(self._private.decrypt(ciphertext, mechanism=Mechanism.RSA_X_509))
                return oaep_decode(raw, size, name, label)
        except pkcs11.exceptions.PKCS11Error:
            raise ValueError("decryption failed") from None

    def sign(
        self,
        data: bytes,
        padding_: padding.AsymmetricPadding,
        algorithm: Prehashed | hashes.HashAlgorithm | NoDigestInfo,
    ) -> bytes:
        """PKCS#1 v1.5 with SHA-256, on the token (a certificate request's signature)."""
        if not isinstance(padding_, padding.PKCS1v15) or not isinstance(algorithm, hashes.SHA256):
            raise UnsupportedKeyError(N_("a key pair on a token signs with SHA-256 only"))
        with self._lock:
            return bytes(self._private.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS))

    def _stays(self) -> NoReturn:
        raise UnsupportedKeyError(
            N_("the key pair {label} lives on a token: its private key cannot leave it"),
            label=self.label,
        )

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        self._stays()

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        self._stays()

    def __copy__(self) -> TokenRSAKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> TokenRSAKey:
        return self
