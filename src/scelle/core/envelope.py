"""Envelopes: CMS AuthEnvelopedData (RFC 5083) with AES-256-GCM and RSA-OAEP, streamed.

The writer produces what DESIGN.md specifies and `openssl cms -decrypt` opens:

    ContentInfo { id-ct-authEnvelopedData, [0] AuthEnvelopedData {
        version 0, recipientInfos (one KeyTransRecipientInfo per certificate,
        RSAES-OAEP SHA-256/MGF1-SHA-256, RFC 4055), authEncryptedContentInfo {
            id-data, aes256-GCM { nonce (12 bytes), ICV length 16 } (RFC 5084),
            [0] constructed, indefinite: OCTET STRINGs of 1 MiB of ciphertext },
        mac (the 16-byte GCM tag) } }

No authenticated attributes: OpenSSL 3.0 mis-tags them, and they would sit
after the content, where a streaming reader cannot feed them to GCM as AAD.

The reader streams the same shape, definite or indefinite, and EnvelopedData
(AES-CBC, 3DES; OAEP with any SHA-2 or SHA-1, or PKCS#1 v1.5) from other tools.
It writes plaintext to a sink before the tag is checked: callers must write to
a temporary file and publish it only when `decrypt_stream` returns (see
`open_envelope_to_file` in this module).
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TypeAlias

from asn1crypto import algos, cms
from asn1crypto import core as asn1
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP, PKCS1v15
from cryptography.hazmat.primitives.ciphers import (
    AEADDecryptionContext,
    Cipher,
    CipherContext,
    algorithms,
    modes,
)
from cryptography.hazmat.primitives.serialization import Encoding

from scelle.core import ber
from scelle.core.errors import N_, DecryptionError, EncryptionError, UnsupportedKeyError
from scelle.core.files import Readable, Writable, atomic_output, write_all
from scelle.core.pipeline import WriteBehind

CHUNK_SIZE = 1 << 20
"""Plaintext bytes per OCTET STRING segment of the encrypted content."""

MAX_CONTENT_BYTES = (1 << 36) - 32
"""GCM's limit for one key and nonce: 2^39 - 256 bits (NIST SP 800-38D, 5.2.1.1)."""

MIN_RSA_BITS = 2048

DECRYPTION_FAILED = (
    "this envelope cannot be opened: it is not addressed to the key used, or it is damaged"
)

ProgressCallback = Callable[[int], None]
"""Called with the number of input bytes consumed since the previous call."""

_OID_DATA = "1.2.840.113549.1.7.1"
_OID_AUTH_ENVELOPED_DATA = "1.2.840.113549.1.9.16.1.23"
_OID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
_OID_AES256_GCM = "2.16.840.1.101.3.4.1.46"
_GCM_KEY_BYTES = {
    "2.16.840.1.101.3.4.1.6": 16,
    "2.16.840.1.101.3.4.1.26": 24,
    _OID_AES256_GCM: 32,
}
_CBC_KEY_BYTES = {"aes128_cbc": 16, "aes192_cbc": 24, "aes256_cbc": 32, "tripledes_3key": 24}
_TAG_BYTES = 16
_NONCE_BYTES = 12
_MAX_RECIPIENT_INFOS = 16 << 20  # bytes of RecipientInfos we agree to hold in memory
_MAX_SMALL_FIELD = 64 << 10  # an algorithm identifier, an OID, a tag
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class _GcmParameters(asn1.Sequence):  # type: ignore[misc]
    """GCMParameters (RFC 5084, section 3.2)."""

    _fields: ClassVar = [
        ("aes_nonce", asn1.OctetString),
        ("aes_icvlen", asn1.Integer, {"default": 12}),
    ]


class _AlgorithmIdentifier(asn1.Sequence):  # type: ignore[misc]
    _fields: ClassVar = [
        ("algorithm", asn1.ObjectIdentifier),
        ("parameters", asn1.Any, {"optional": True}),
    ]


def oaep_sha256_identifier(label: bytes | None = None) -> cms.KeyEncryptionAlgorithm:
    """RSAES-OAEP as RFC 4055, 4.1 writes it: hash and MGF1 hash both SHA-256, and the
    label (pSourceFunc id-pSpecified) when there is one."""
    parameters: dict[str, object] = {
        "hash_algorithm": {"algorithm": "sha256"},
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
    }
    if label is not None:
        parameters["p_source_algorithm"] = {"algorithm": "p_specified", "parameters": label}
    return cms.KeyEncryptionAlgorithm(
        {"algorithm": "rsaes_oaep", "parameters": algos.RSAESOAEPParams(parameters)}
    )


def oaep_sha256(label: bytes | None = None) -> OAEP:
    return OAEP(mgf=MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=label)


_OAEP_SHA256 = oaep_sha256()


def recipient_public_key(certificate: x509.Certificate) -> rsa.RSAPublicKey:
    """The RSA key of a recipient certificate, or an error naming what is wrong with it."""
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise UnsupportedKeyError(
            N_(
                "the certificate of {subject} holds {describe_key}; envelopes can only be sealed "
                "to RSA keys"
            ),
            subject=_subject(certificate),
            describe_key=describe_key(key),
        )
    if key.key_size < MIN_RSA_BITS:
        raise UnsupportedKeyError(
            N_(
                "the certificate of {subject} holds an RSA key of {key_size} bits; at least "
                "{min_rsa_bits} are required"
            ),
            subject=_subject(certificate),
            key_size=key.key_size,
            min_rsa_bits=MIN_RSA_BITS,
        )
    return key


def describe_key(key: object) -> str:
    """The kind of a public or private key, in words: "an EC key (secp256r1)"."""
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return f"an RSA key of {key.key_size} bits"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return f"an EC key ({key.curve.name})"
    if isinstance(key, dsa.DSAPublicKey | dsa.DSAPrivateKey):
        return "a DSA key"
    eddsa = (
        ed25519.Ed25519PublicKey,
        ed25519.Ed25519PrivateKey,
        ed448.Ed448PublicKey,
        ed448.Ed448PrivateKey,
    )
    if isinstance(key, eddsa):
        return "an EdDSA key"
    return f"a key of type {type(key).__name__}"


def _subject(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string() or "(no subject)"


@dataclass(frozen=True)
class EnvelopeKeys:
    """What makes an envelope's ciphertext reproducible from its plaintext.

    Keeping these (encrypted) lets a client re-create the very same envelope
    to resume an interrupted upload (DESIGN.md, Deposit flow).
    """

    content_key: bytes = field(repr=False)
    """The AES-256 key of the content."""
    nonce: bytes
    """The 12-byte GCM nonce (RFC 5084)."""
    recipient_infos: bytes
    """DER of the RecipientInfos SET: the content key wrapped for each recipient."""

    @classmethod
    def for_recipients(
        cls,
        certificates: Sequence[x509.Certificate],
        *,
        also: Callable[[bytes], cms.RecipientInfo] | None = None,
    ) -> EnvelopeKeys:
        """A fresh content key and nonce, wrapped with RSA-OAEP for each certificate, and
        given to `also` (a commission's shares, core.commission) when there is one."""
        if not certificates:
            raise EncryptionError(
                N_("an envelope needs at least one recipient"),
            )
        content_key = os.urandom(32)
        infos = []
        seen: set[bytes] = set()
        for certificate in certificates:
            fingerprint = certificate.fingerprint(hashes.SHA256())
            if fingerprint in seen:
                continue
            seen.add(fingerprint)
            key = recipient_public_key(certificate)
            parsed = asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))
            infos.append(
                cms.RecipientInfo(
                    name="ktri",
                    value=cms.KeyTransRecipientInfo(
                        {
                            "version": "v0",
                            "rid": cms.RecipientIdentifier(
                                name="issuer_and_serial_number",
                                value=cms.IssuerAndSerialNumber(
                                    {
                                        "issuer": parsed.issuer,
                                        "serial_number": parsed.serial_number,
                                    }
                                ),
                            ),
                            "key_encryption_algorithm": oaep_sha256_identifier(),
                            "encrypted_key": key.encrypt(content_key, _OAEP_SHA256),
                        }
                    ),
                )
            )
        if also is not None:
            infos.append(also(content_key))
        return cls(content_key, os.urandom(_NONCE_BYTES), cms.RecipientInfos(infos).dump())


def _read_full(source: Readable, view: memoryview) -> int:
    """Fill `view` unless the source ends first: chunks stay exactly CHUNK_SIZE."""
    done = 0
    while done < len(view):
        got = source.readinto(view[done:])
        if not got:
            break
        done += got
    return done


def _envelope_prefix(keys: EnvelopeKeys) -> bytes:
    algorithm = _AlgorithmIdentifier(
        {
            "algorithm": _OID_AES256_GCM,
            "parameters": _GcmParameters({"aes_nonce": keys.nonce, "aes_icvlen": _TAG_BYTES}),
        }
    ).dump()
    return b"".join(
        (
            b"\x30\x80",  # ContentInfo
            ber.tlv(ber.TAG_OID, asn1.ObjectIdentifier(_OID_AUTH_ENVELOPED_DATA).contents),
            b"\xa0\x80",  # [0] EXPLICIT content
            b"\x30\x80",  # AuthEnvelopedData
            b"\x02\x01\x00",  # version 0
            keys.recipient_infos,
            b"\x30\x80",  # EncryptedContentInfo
            ber.tlv(ber.TAG_OID, asn1.ObjectIdentifier(_OID_DATA).contents),
            algorithm,
            b"\xa0\x80",  # [0] IMPLICIT encryptedContent, constructed
        )
    )


def encrypt_stream(
    source: Readable,
    sink: Writable,
    keys: EnvelopeKeys,
    *,
    progress: ProgressCallback | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> int:
    """Seal everything `source` holds into an envelope written to `sink`.

    Memory stays at about two chunks whatever the size. Returns the number of
    plaintext bytes sealed.
    """
    encryptor = Cipher(algorithms.AES(keys.content_key), modes.GCM(keys.nonce)).encryptor()
    in_buffer = bytearray(chunk_size)
    in_view = memoryview(in_buffer)
    # Room for the longest OCTET STRING header in front of the ciphertext, so
    # that each segment leaves in a single write.
    header_room = 6
    total = 0
    write_all(sink, _envelope_prefix(keys))
    with WriteBehind(sink, size=header_room + chunk_size + 16) as writer:
        while count := _read_full(source, in_view):
            total += count
            if total > MAX_CONTENT_BYTES:
                raise EncryptionError(
                    N_("an envelope holds at most 64 GiB; split the content"),
                )
            header = b"\x04" + ber.encode_length(count)
            start = header_room - len(header)
            out = writer.buffer()
            out[start:header_room] = header
            written = encryptor.update_into(in_view[:count], memoryview(out)[header_room:])
            writer.submit(out, header_room + written, start)
            if progress is not None:
                progress(count)
    encryptor.finalize()
    tag = encryptor.tag
    write_all(
        sink,
        ber.EOC  # end of encryptedContent
        + ber.EOC  # end of EncryptedContentInfo
        + ber.tlv(ber.TAG_OCTET_STRING, tag)  # mac
        + ber.EOC  # end of AuthEnvelopedData
        + ber.EOC  # end of [0]
        + ber.EOC,  # end of ContentInfo
    )
    return total


_TRAILER_BYTES = 2 + 2 + (2 + _TAG_BYTES) + 2 + 2 + 2  # EOCs around the tag, as written above


def envelope_size(keys: EnvelopeKeys, plaintext_size: int, *, chunk_size: int = CHUNK_SIZE) -> int:
    """The exact length of the envelope `encrypt_stream` writes for `plaintext_size` bytes.

    An upload announces its length before the first byte (tus), and the
    framing is fixed: the prefix, one OCTET STRING per chunk, the trailer.
    """
    full, rest = divmod(plaintext_size, chunk_size)
    segments = full * (1 + len(ber.encode_length(chunk_size)) + chunk_size)
    if rest:
        segments += 1 + len(ber.encode_length(rest)) + rest
    return len(_envelope_prefix(keys)) + segments + _TRAILER_BYTES


@dataclass(frozen=True)
class DecryptionKey:
    """A private key that may open envelopes, with its certificate when known."""

    private_key: rsa.RSAPrivateKey = field(repr=False)
    certificate: x509.Certificate | None = None
    """Used to pick the recipient info addressed to this key; without it every one is tried."""


@dataclass(frozen=True)
class KnownContentKey:
    """An envelope's content key, known another way than by a recipient's private key (a
    commission's members' shares, combined): only the tag tells whether it is the one."""

    content_key: bytes = field(repr=False)


OpeningKey: TypeAlias = "DecryptionKey | KnownContentKey"
"""What may open an envelope: a private key, or the content key itself."""


class _Failed(Exception):
    """Any failure inside the reader; turned into the one DecryptionError."""


def _check(condition: bool) -> None:
    if not condition:
        raise _Failed


def _matches(rid: cms.RecipientIdentifier, certificate: x509.Certificate) -> bool:
    parsed = asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))
    if rid.name == "issuer_and_serial_number":
        wanted = rid.chosen
        return bool(
            wanted["serial_number"].native == parsed.serial_number
            and wanted["issuer"] == parsed.issuer
        )
    if rid.name == "subject_key_identifier":
        identifier = parsed.key_identifier or parsed.public_key.sha1
        return bool(rid.chosen.native == identifier)
    return False


def _key_transport_padding(algorithm: cms.KeyEncryptionAlgorithm) -> OAEP | PKCS1v15:
    name = algorithm["algorithm"].native
    if name == "rsaes_pkcs1v15":
        return PKCS1v15()
    _check(name == "rsaes_oaep")
    params = algorithm["parameters"]
    if isinstance(params, asn1.Void) or params.native is None:
        params = algos.RSAESOAEPParams({})  # all defaults: SHA-1, MGF1-SHA-1, empty label
    hash_name = params["hash_algorithm"]["algorithm"].native
    mgf = params["mask_gen_algorithm"]
    _check(mgf["algorithm"].native == "mgf1")
    mgf_hash = mgf["parameters"]["algorithm"].native
    _check(hash_name in _HASHES and mgf_hash in _HASHES)
    source = params["p_source_algorithm"]
    label = source["parameters"].native or None
    return OAEP(
        mgf=MGF1(algorithm=_HASHES[mgf_hash]()), algorithm=_HASHES[hash_name](), label=label
    )


def _unwrap_content_key(
    recipient_infos: bytes, keys: Sequence[OpeningKey], key_bytes: int, *, oaep_only: bool
) -> bytes:
    """The content key, or a random one when no recipient info yields a plausible key.

    Falling through with a random key makes every failure (no matching
    recipient, wrong key, bad padding) surface at the same place, the tag or
    padding check at the end, as OpenSSL's CMS does against Bleichenbacher's attack.
    """
    infos = cms.RecipientInfos.load(recipient_infos, strict=True)
    for info in infos:
        # Parses every field now: a malformed one must fail, not hide. Another kind's value
        # (a commission's shares: core.commission) has no schema here, and is skipped.
        info.native if info.name != "ori" else info.chosen["ori_type"].native
    for key in keys:
        if isinstance(key, KnownContentKey):
            if len(key.content_key) == key_bytes:
                return key.content_key
            continue
        for info in infos:
            if info.name != "ktri":
                continue
            ktri = info.chosen
            # RFC 5652, 6.2.1: version 0 with issuerAndSerialNumber, 2 with a key identifier.
            issuer_and_serial = ktri["rid"].name == "issuer_and_serial_number"
            _check(ktri["version"].native == ("v0" if issuer_and_serial else "v2"))
            if key.certificate is not None and not _matches(ktri["rid"], key.certificate):
                continue
            try:
                padding_ = _key_transport_padding(ktri["key_encryption_algorithm"])
                if oaep_only and not isinstance(padding_, OAEP):
                    continue
                content_key = key.private_key.decrypt(ktri["encrypted_key"].native, padding_)
            except (ValueError, _Failed):
                continue
            if len(content_key) == key_bytes:
                return content_key
    return os.urandom(key_bytes)


class _Decryptor:
    """Batches ciphertext from any framing into 1 MiB runs, decrypts, hands them to a writer."""

    def __init__(
        self, cipher: CipherContext, writer: WriteBehind, progress: ProgressCallback | None
    ) -> None:
        self._cipher = cipher
        self._writer = writer
        self._progress = progress
        self._in = memoryview(bytearray(CHUNK_SIZE))
        self._filled = 0
        self.total = 0

    def consume(self, reader: ber.BerReader, size: int) -> None:
        while size:
            step = min(size, CHUNK_SIZE - self._filled)
            reader.readinto_exact(self._in[self._filled : self._filled + step])
            self._filled += step
            size -= step
            if self._filled == CHUNK_SIZE:
                self.flush()

    def flush(self) -> None:
        if not self._filled:
            return
        out = self._writer.buffer()
        written = self._cipher.update_into(self._in[: self._filled], out)
        self._writer.submit(out, written)
        if self._progress is not None:
            self._progress(self._filled)
        self.total += self._filled
        _check(self.total <= MAX_CONTENT_BYTES + CHUNK_SIZE)
        self._filled = 0


def _stream_octets(
    reader: ber.BerReader, header: ber.Header, decryptor: _Decryptor, depth: int = 0
) -> None:
    """Feed the content of an OCTET STRING (any BER form) to the decryptor."""
    _check(depth < ber.MAX_DEPTH)
    if not header.constructed:
        _check(header.length is not None)
        decryptor.consume(reader, header.length or 0)
        return
    start = reader.position
    while True:
        if header.length is not None and reader.position - start >= header.length:
            _check(reader.position - start == header.length)
            return
        segment = reader.read_header()
        if segment.is_eoc:
            _check(header.length is None and segment.length == 0)
            return
        _check(segment.is_(ber.UNIVERSAL, 4))
        _stream_octets(reader, segment, decryptor, depth + 1)


def _read_oid(reader: ber.BerReader) -> str:
    header, raw = reader.read_tlv(limit=_MAX_SMALL_FIELD)
    _check(header.is_(ber.UNIVERSAL, 6, constructed=False))
    return str(asn1.ObjectIdentifier.load(raw).dotted)


def _content_cipher(
    algorithm: _AlgorithmIdentifier, authenticated: bool
) -> tuple[int, Callable[[bytes], CipherContext], int]:
    """(key length, decryptor factory, tag length or block size) of the content algorithm."""
    oid = algorithm["algorithm"].dotted
    if authenticated:
        _check(oid in _GCM_KEY_BYTES)
        params = _GcmParameters.load(algorithm["parameters"].dump())
        nonce = params["aes_nonce"].native
        tag_length = params["aes_icvlen"].native
        _check(12 <= tag_length <= 16 and 8 <= len(nonce) <= 128)
        return (
            _GCM_KEY_BYTES[oid],
            lambda key: Cipher(
                algorithms.AES(key), modes.GCM(nonce, min_tag_length=tag_length)
            ).decryptor(),
            tag_length,
        )
    parsed = algos.EncryptionAlgorithm.load(algorithm.dump())
    name = parsed["algorithm"].native
    _check(name in _CBC_KEY_BYTES)
    iv = parsed.encryption_iv
    if name == "tripledes_3key":
        _check(len(iv) == 8)
        return 24, lambda key: Cipher(TripleDES(key), modes.CBC(iv)).decryptor(), 8
    _check(len(iv) == 16)
    return (
        _CBC_KEY_BYTES[name],
        lambda key: Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor(),
        16,
    )


@dataclass(frozen=True)
class _Header:
    content_info: ber.Header
    content_info_start: int
    explicit: ber.Header
    explicit_start: int
    enveloped: ber.Header
    enveloped_start: int
    authenticated: bool
    recipient_infos: bytes
    content_info_header: ber.Header
    eci_start: int
    algorithm: _AlgorithmIdentifier


def _read_header(reader: ber.BerReader) -> _Header:
    """Everything before the encrypted content: the type, the recipients, the algorithm."""
    content_info = reader.read_header()
    _check(content_info.is_(ber.UNIVERSAL, 16, constructed=True))
    content_info_start = reader.position
    content_type = _read_oid(reader)
    _check(content_type in (_OID_AUTH_ENVELOPED_DATA, _OID_ENVELOPED_DATA))
    authenticated = content_type == _OID_AUTH_ENVELOPED_DATA
    explicit = reader.read_header()
    _check(explicit.is_(ber.CONTEXT, 0, constructed=True))
    explicit_start = reader.position
    enveloped = reader.read_header()
    _check(enveloped.is_(ber.UNIVERSAL, 16, constructed=True))
    enveloped_start = reader.position

    version_header, version_raw = reader.read_tlv(limit=16)
    _check(version_header.is_(ber.UNIVERSAL, 2, constructed=False))
    version = asn1.Integer.load(version_raw).native
    _check(version == 0 if authenticated else version in (0, 2, 3, 4))

    header, raw = reader.read_tlv(limit=_MAX_RECIPIENT_INFOS)
    if header.is_(ber.CONTEXT, 0):  # originatorInfo: certificates for key agreement, unused
        header, raw = reader.read_tlv(limit=_MAX_RECIPIENT_INFOS)
    _check(header.is_(ber.UNIVERSAL, 17, constructed=True))

    content_info_header = reader.read_header()
    _check(content_info_header.is_(ber.UNIVERSAL, 16, constructed=True))
    eci_start = reader.position
    # Only id-data: the inner type is not authenticated, so accept no other.
    _check(_read_oid(reader) == _OID_DATA)
    _, algorithm_raw = reader.read_tlv(limit=_MAX_SMALL_FIELD)
    algorithm = _AlgorithmIdentifier.load(algorithm_raw, strict=True)
    return _Header(
        content_info,
        content_info_start,
        explicit,
        explicit_start,
        enveloped,
        enveloped_start,
        authenticated,
        raw,
        content_info_header,
        eci_start,
        algorithm,
    )


def _decrypt(
    reader: ber.BerReader,
    sink: Writable,
    keys: Sequence[OpeningKey],
    progress: ProgressCallback | None,
    deposit: bool,
) -> int:
    head = _read_header(reader)
    authenticated = head.authenticated
    # A deposit is only ever what Scellé writes: AES-GCM content, RSA-OAEP key transport.
    _check(not deposit or (authenticated and head.algorithm["algorithm"].dotted == _OID_AES256_GCM))
    key_bytes, make_cipher, tag_or_block = _content_cipher(head.algorithm, authenticated)
    recipient_infos = head.recipient_infos
    content_info, content_info_start = head.content_info, head.content_info_start
    explicit, explicit_start = head.explicit, head.explicit_start
    enveloped, enveloped_start = head.enveloped, head.enveloped_start
    content_info_header, eci_start = head.content_info_header, head.eci_start

    content_key = _unwrap_content_key(recipient_infos, keys, key_bytes, oaep_only=deposit)
    cipher = make_cipher(content_key)
    # CBC: the padding is only known at the end, so an unpadder holding the
    # last block back stands in front of the sink.
    unpadding = None if authenticated else _UnpaddingSink(tag_or_block, sink)
    with WriteBehind(sink if unpadding is None else unpadding, size=CHUNK_SIZE + 32) as writer:
        decryptor = _Decryptor(cipher, writer, progress)
        encrypted = reader.read_header()
        # Detached content (absent [0]) is not an envelope we can open.
        _check(encrypted.is_(ber.CONTEXT, 0))
        _stream_octets(reader, encrypted, decryptor)
        decryptor.flush()
    reader.expect_end(content_info_header, eci_start)

    if unpadding is None:
        mac_header = reader.read_header()
        _check(mac_header.is_(ber.UNIVERSAL, 4, constructed=False))
        _check(mac_header.length == tag_or_block)
        if not isinstance(cipher, AEADDecryptionContext):
            raise _Failed
        try:
            cipher.finalize_with_tag(reader.read_exact(tag_or_block))
        except InvalidTag:
            raise _Failed from None
    else:
        unpadding.finish(cipher.finalize())
    # Optional trailing attributes: unprotectedAttrs [1] or unauthAttrs [2].
    if enveloped.length is None or reader.position - enveloped_start < enveloped.length:
        peek_header = reader.read_header()
        if peek_header.is_eoc:
            _check(enveloped.length is None and peek_header.length == 0)
        else:
            _check(peek_header.is_(ber.CONTEXT, 2 if authenticated else 1, constructed=True))
            reader.read_value(peek_header, limit=_MAX_RECIPIENT_INFOS)
            reader.expect_end(enveloped, enveloped_start)
    else:
        reader.expect_end(enveloped, enveloped_start)
    reader.expect_end(explicit, explicit_start)
    reader.expect_end(content_info, content_info_start)
    _check(reader.at_end())
    return decryptor.total if unpadding is None else unpadding.written


class _UnpaddingSink:
    """A sink that strips PKCS#7 padding, holding the last block back until the end."""

    def __init__(self, block_bytes: int, sink: Writable) -> None:
        self._unpadder = padding.PKCS7(block_bytes * 8).unpadder()
        self._sink = sink
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._emit(self._unpadder.update(bytes(data)))
        return len(data)

    def finish(self, tail: bytes) -> None:
        self._emit(self._unpadder.update(tail) + self._unpadder.finalize())

    def _emit(self, plaintext: bytes) -> None:
        write_all(self._sink, plaintext)
        self.written += len(plaintext)


def decrypt_stream(
    source: Readable,
    sink: Writable,
    keys: Sequence[OpeningKey],
    *,
    progress: ProgressCallback | None = None,
    deposit: bool = False,
) -> int:
    """Open the envelope in `source`, writing its plaintext to `sink`.

    Plaintext reaches `sink` before the tag is verified: write to a temporary
    place and use it only when this returns. Any failure raises the one
    `DecryptionError`. Returns the number of plaintext bytes written.
    `deposit` accepts only what Scellé seals bids with (AuthEnvelopedData,
    AES-256-GCM, RSA-OAEP): the weaker formats are for foreign files only.
    """
    wrapper = None
    if not hasattr(source, "peek"):
        wrapper = io.BufferedReader(source)  # type: ignore[type-var]
        source = wrapper
    try:
        reader = ber.BerReader(_unarmoured(source))
        return _decrypt(reader, sink, keys, progress, deposit)
    except (_Failed, *ber.MALFORMED):
        # cryptography's padding errors are ValueErrors too. All read the same to the caller.
        raise DecryptionError(DECRYPTION_FAILED) from None
    finally:
        if wrapper is not None:
            wrapper.detach()  # the caller's stream stays the caller's to close


def read_recipient_infos(source: Readable) -> bytes:
    """The DER of an envelope's RecipientInfos, read from its header only (core.recipients
    says whom they name).

    Raises the one `DecryptionError` for anything that is not an envelope.
    """
    wrapper = None
    if not hasattr(source, "peek"):
        wrapper = io.BufferedReader(source)  # type: ignore[type-var]
        source = wrapper
    try:
        head = _read_header(ber.BerReader(_unarmoured(source)))
        cms.RecipientInfos.load(head.recipient_infos, strict=True)
        return head.recipient_infos
    except (_Failed, *ber.MALFORMED):
        raise DecryptionError(DECRYPTION_FAILED) from None
    finally:
        if wrapper is not None:
            wrapper.detach()


def same_recipient(rid: cms.RecipientIdentifier, certificate: x509.Certificate) -> bool:
    """True when the recipient identifier names `certificate`."""
    return _matches(rid, certificate)


def describe_recipient(rid: cms.RecipientIdentifier) -> str:
    """A recipient identifier as a person reads it: issuer and serial, or key identifier."""
    if rid.name == "issuer_and_serial_number":
        chosen = rid.chosen
        return f"{chosen['issuer'].human_friendly}, serial {chosen['serial_number'].native:x}"
    return f"key identifier {rid.chosen.native.hex()}"


def open_envelope_to_file(
    source: Readable,
    target: Path,
    keys: Sequence[OpeningKey],
    *,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> int:
    """Decrypt into `target`, which appears only once the envelope has verified."""
    with atomic_output(target, overwrite=overwrite) as handle:
        return decrypt_stream(source, handle, keys, progress=progress)


# --- PEM armour ------------------------------------------------------------------

_PEM_BEGIN = b"-----BEGIN "


def _unarmoured(source: Readable) -> Readable:
    """DER/BER as is; PEM ("-----BEGIN CMS-----", "PKCS7") decoded on the fly."""
    if source.peek(len(_PEM_BEGIN))[: len(_PEM_BEGIN)] == _PEM_BEGIN:  # type: ignore[attr-defined]
        return io.BufferedReader(_PemDecoder(source), buffer_size=64 << 10)
    return source


class _PemDecoder(io.RawIOBase):
    """Streams the base64 body of a PEM block as raw bytes."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._pending = bytearray()
        self._decoded = bytearray()
        self._started = False
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._decoded and not self._done:
            line = self._source.readline(1 << 16)
            if not line:
                _check(self._started)
                self._done = True
                break
            stripped = line.strip()
            if stripped.startswith(b"-----BEGIN "):
                _check(not self._started)
                self._started = True
                continue
            if stripped.startswith(b"-----END "):
                self._done = True
            else:
                self._pending += b"".join(stripped.split())
            usable = len(self._pending) if self._done else len(self._pending) // 4 * 4
            try:
                self._decoded += base64.b64decode(bytes(self._pending[:usable]), validate=True)
            except binascii.Error:
                raise _Failed from None
            del self._pending[:usable]
        count = min(len(buffer), len(self._decoded))
        buffer[:count] = self._decoded[:count]
        del self._decoded[:count]
        return count
