"""PKCS#12 files nobody here wrote for us (tests/vectors/README.md): Windows, OpenSSL, and a
few made here for what no public corpus holds. Each either imports, named as a buyer
expects, or is refused with one sentence saying what it holds and why: never a traceback,
never "wrong password" for something else, never a warning printed."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import pytest
from asn1crypto import pkcs12 as asn1_pkcs12
from hypothesis import given, settings
from hypothesis import strategies as st

from scelle.core.errors import PKCS12Error, ScelleError, UnsupportedKeyError, WrongPasswordError
from scelle.core.pkcs12 import import_pkcs12, usable_name
from scelle.core.pkcs12_latin1 import pkcs12_kdf

CORPUS = Path(__file__).resolve().parents[1] / "vectors" / "pkcs12"
PASSWORD = "Mot-de-passe-1"
LATIN1_PASSWORD = "Clé-d'été-2026"

IMPORTS = [
    # file, password, name the store gets, key bits
    ("go-windows-azure-tools.pfx", "", "Paul's Playground-10-2-2014-credentials", 2048),
    ("go-empty-password.pfx", "", "Friendly name for cert", 2048),
    ("openssl-negative-serial.pfx", PASSWORD, "Ancienne AC", 2048),
    ("made-latin1-password.pfx", LATIN1_PASSWORD, "Cle Latin-1", 2048),
    ("openssl-camellia.pfx", PASSWORD, "Camellia", 2048),
]
REFUSALS = [
    # file, password, error, words the sentence must hold
    ("go-windows-ias-peap.pfx", "", UnsupportedKeyError, "RSA key of 1024 bits"),
    ("openssl-ec-brainpool.pfx", PASSWORD, UnsupportedKeyError,
     "an EC key on the curve 1.3.36.3.3.2.8.1.1.8, which Scellé cannot read"),
    ("made-gost-mac.pfx", PASSWORD, PKCS12Error, "MAC algorithm Scellé cannot check (GOST"),
    ("made-gost-cipher.pfx", PASSWORD, PKCS12Error,
     "an algorithm Scellé cannot decrypt (GOST R 34.12-2015 Kuznyechik)"),
    ("made-latin1-password.pfx", "Clé-d'hiver-2026", WrongPasswordError, "wrong password"),
    ("openssl-negative-serial.pfx", "Mot-de-passe-2", WrongPasswordError, "wrong password"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "password", "expected", "bits"), IMPORTS)
def test_the_corpus_imports(name: str, password: str, expected: str, bits: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation line printed to the buyer
        bundle = import_pkcs12((CORPUS / name).read_bytes(), password, source=name)
    assert bundle.friendly_name == expected
    assert bundle.private_key.key_size == bits


@pytest.mark.parametrize(("name", "password", "error", "words"), REFUSALS)
def test_the_corpus_refusals_say_why(name: str, password: str, error: type, words: str) -> None:
    with pytest.raises(error) as raised:
        import_pkcs12((CORPUS / name).read_bytes(), password, source=name)
    assert words in str(raised.value) and name in str(raised.value)


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (b"Paul's Playground\x00", "Paul's Playground"),
        (b"\x00\x00", None),
        (b"Mon\tbi-cl\xc3\xa9\r\n", "Mon bi-clé"),
        (b"\xe2\x80\x8bZ\xe2\x80\x8b", "Z"),  # zero-width spaces: format characters
        (b"x" * 100, "x" * 64),
        (None, None),
    ],
)
def test_friendly_names_become_usable_names(raw: bytes | None, name: str | None) -> None:
    assert usable_name(raw) == name


@pytest.mark.parametrize(
    ("name", "password"),
    [("go-windows-azure-tools.pfx", ""), ("openssl-negative-serial.pfx", PASSWORD),
     ("made-latin1-password.pfx", LATIN1_PASSWORD)],
)  # fmt: skip
def test_the_mac_key_derivation_agrees_with_windows_and_openssl(name: str, password: str) -> None:
    """RFC 7292 B.2 as written here gives the MAC key that Windows and OpenSSL used."""
    import hashlib
    import hmac

    pfx = asn1_pkcs12.Pfx.load((CORPUS / name).read_bytes())
    mac = pfx["mac_data"]
    digest = mac["mac"]["digest_algorithm"]["algorithm"].native
    key = pkcs12_kdf(
        digest, password, mac["mac_salt"].native, mac["iterations"].native,
        hashlib.new(digest).digest_size,
    )  # fmt: skip
    content = pfx["auth_safe"]["content"].native
    assert hmac.new(key, content, digest).digest() == mac["mac"]["digest"].native
    wrong = pkcs12_kdf(digest, password + "x", mac["mac_salt"].native, 1, 20)
    assert wrong != key[:20]


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=2000), st.integers(min_value=0, max_value=255))
def test_a_damaged_latin1_file_gives_one_clear_error(position: int, value: int) -> None:
    data = bytearray((CORPUS / "made-latin1-password.pfx").read_bytes())
    data[position % len(data)] = value
    with contextlib.suppress(ScelleError):
        import_pkcs12(bytes(data), LATIN1_PASSWORD)
