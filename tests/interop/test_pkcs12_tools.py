"""PKCS#12 both ways with OpenSSL, NSS (`pk12util`) and Java (`keytool`).

Each tool must read what we export, modern and legacy, and we must read what
each writes with its defaults and its legacy settings, Unicode passwords
included. "Read" means the private key came out whole: the tools either
re-export it (read back here) or print it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scelle.core.pkcs12 import KeyBundle, export_pkcs12, import_pkcs12
from tests.conftest import Identity, require_tool

pytestmark = pytest.mark.interop

PASSWORDS = ["Export-Bi-cle-2026!", "Clé-été-Ωμέγα-2026"]
PASSWORD_IDS = ["ascii", "unicode"]
# Java's keytool refuses non-ASCII passwords outright ("Password is not
# ASCII", JDK 17): no .pfx with such a password can travel through it.
JAVA_PASSWORD = PASSWORDS[0]


def run(*command: str, input: bytes | None = None) -> str:
    done = subprocess.run(
        [require_tool(command[0]), *command[1:]], input=input, capture_output=True, check=False
    )
    output = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == 0, output
    return output


def same_key(a: rsa.RSAPrivateKey, b: rsa.RSAPrivateKey) -> bool:
    return a.private_numbers() == b.private_numbers()


def export_ours(tmp_path: Path, identity: Identity, password: str, legacy: bool) -> Path:
    target = tmp_path / ("legacy.pfx" if legacy else "modern.pfx")
    bundle = KeyBundle(identity.key, identity.certificate, friendly_name="Bi-clé marchés")
    target.write_bytes(export_pkcs12(bundle, password, legacy=legacy))
    return target


# --- OpenSSL -----------------------------------------------------------------------


@pytest.mark.parametrize("password", PASSWORDS, ids=PASSWORD_IDS)
@pytest.mark.parametrize("legacy", [False, True], ids=["modern", "legacy"])
def test_openssl_reads_ours(tmp_path: Path, alice: Identity, password: str, legacy: bool) -> None:
    pfx = export_ours(tmp_path, alice, password, legacy)
    output = run("openssl", "pkcs12", "-in", str(pfx), "-passin", f"pass:{password}", "-nodes")
    key = serialization.load_pem_private_key(output.encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey) and same_key(key, alice.key)
    assert "friendlyName: Bi-clé marchés" in output or "Bi-cl" in output


@pytest.mark.parametrize("password", PASSWORDS, ids=PASSWORD_IDS)
@pytest.mark.parametrize(
    "options",
    [
        [],  # OpenSSL 3 defaults: PBES2 AES-256-CBC, SHA-256 MAC
        ["-legacy"],  # RC2-40 certificates, 3DES key, SHA-1 MAC
        ["-certpbe", "AES-128-CBC", "-keypbe", "AES-128-CBC", "-macalg", "sha512"],
        ["-descert"],  # 3DES certificates
    ],
    ids=["default", "legacy", "aes128-sha512", "descert"],
)
def test_we_read_openssl(
    tmp_path: Path, alice: Identity, bob: Identity, password: str, options: list[str]
) -> None:
    pfx = tmp_path / "openssl.p12"
    run(
        "openssl", "pkcs12", "-export", "-inkey", str(alice.key_pem), "-in", str(alice.cert_pem),
        "-certfile", str(bob.cert_pem), "-name", "Clé OpenSSL", "-passout", f"pass:{password}",
        "-out", str(pfx), *options,
    )  # fmt: skip
    bundle = import_pkcs12(pfx.read_bytes(), password)
    assert same_key(bundle.private_key, alice.key)
    assert bundle.certificate == alice.certificate
    assert bundle.chain == (bob.certificate,)
    assert bundle.friendly_name == "Clé OpenSSL"


# --- NSS ---------------------------------------------------------------------------


@pytest.fixture
def nss_db(tmp_path: Path) -> Path:
    database = tmp_path / "nssdb"
    database.mkdir()
    run("certutil", "-N", "-d", f"sql:{database}", "--empty-password")
    return database


def nss_export(database: Path, nickname: str, target: Path, password: str, *options: str) -> None:
    run(
        "pk12util", "-o", str(target), "-n", nickname, "-d", f"sql:{database}",
        "-W", password, "-K", "", *options,
    )  # fmt: skip


@pytest.mark.parametrize("password", PASSWORDS, ids=PASSWORD_IDS)
@pytest.mark.parametrize("legacy", [False, True], ids=["modern", "legacy"])
def test_nss_reads_ours_and_gives_it_back(
    tmp_path: Path, nss_db: Path, alice: Identity, password: str, legacy: bool
) -> None:
    pfx = export_ours(tmp_path, alice, password, legacy)
    run("pk12util", "-i", str(pfx), "-d", f"sql:{nss_db}", "-W", password, "-K", "")
    listing = run("certutil", "-K", "-d", f"sql:{nss_db}")
    assert "Bi-clé marchés" in listing or "rsa" in listing
    # NSS re-exports the key it decrypted (BER, its defaults): we read it back.
    back = tmp_path / "from-nss.p12"
    nss_export(nss_db, "Bi-clé marchés", back, password)
    bundle = import_pkcs12(back.read_bytes(), password)
    assert same_key(bundle.private_key, alice.key)
    assert bundle.certificate == alice.certificate


@pytest.mark.parametrize("password", PASSWORDS, ids=PASSWORD_IDS)
@pytest.mark.parametrize(
    "options",
    [
        [],  # NSS defaults
        ["-c", "PKCS #12 V2 PBE With SHA-1 And 3KEY Triple DES-CBC",
         "-C", "PKCS #12 V2 PBE With SHA-1 And 40 Bit RC2 CBC", "-M", "SHA-1"],
        ["-c", "AES-256-CBC", "-C", "AES-128-CBC", "-M", "SHA-256"],
    ],
    ids=["default", "legacy", "aes"],
)  # fmt: skip
def test_we_read_nss_generated_keys(
    tmp_path: Path, nss_db: Path, password: str, options: list[str]
) -> None:
    noise = tmp_path / "noise"
    noise.write_bytes(bytes(range(256)) * 8)
    run(
        "certutil", "-S", "-n", "nss-key", "-s", "CN=Cle NSS,O=Mairie", "-x", "-t", "u,u,u",
        "-k", "rsa", "-g", "2048", "-v", "24", "--keyUsage", "keyEncipherment",
        "-d", f"sql:{nss_db}", "-z", str(noise),
    )  # fmt: skip
    pfx = tmp_path / "nss.p12"
    nss_export(nss_db, "nss-key", pfx, password, *options)
    assert pfx.read_bytes()[1] == 0x80, "pk12util writes BER with indefinite lengths"
    bundle = import_pkcs12(pfx.read_bytes(), password)
    assert bundle.private_key.key_size == 2048
    assert bundle.friendly_name == "nss-key"


# --- Java keytool ------------------------------------------------------------------


def keytool(*args: str) -> str:
    return run("keytool", *args)


@pytest.mark.parametrize("legacy", [False, True], ids=["modern", "legacy"])
def test_keytool_reads_ours_and_gives_it_back(
    tmp_path: Path, alice: Identity, legacy: bool
) -> None:
    password = JAVA_PASSWORD
    pfx = export_ours(tmp_path, alice, password, legacy)
    listing = keytool("-list", "-v", "-storetype", "PKCS12", "-keystore", str(pfx),
                      "-storepass", password)  # fmt: skip
    assert "PrivateKeyEntry" in listing
    # Copying the entry makes Java decrypt the private key and encrypt it again.
    copy = tmp_path / "java.p12"
    keytool(
        "-importkeystore", "-noprompt", "-srckeystore", str(pfx), "-srcstoretype", "PKCS12",
        "-srcstorepass", password, "-destkeystore", str(copy), "-deststoretype", "PKCS12",
        "-deststorepass", password,
    )  # fmt: skip
    bundle = import_pkcs12(copy.read_bytes(), password)
    assert same_key(bundle.private_key, alice.key)


@pytest.mark.parametrize("legacy", [False, True], ids=["modern", "legacy"])
def test_we_read_keytool_generated_keys(tmp_path: Path, legacy: bool) -> None:
    password = JAVA_PASSWORD
    store = tmp_path / "keytool.p12"
    java_options = ["-J-Dkeystore.pkcs12.legacy"] if legacy else []
    keytool(
        *java_options, "-genkeypair", "-alias", "cle-java", "-keyalg", "RSA", "-keysize", "3072",
        "-dname", "CN=Cle Java, O=Region", "-validity", "730", "-ext", "KeyUsage=keyEncipherment",
        "-storetype", "PKCS12", "-keystore", str(store), "-storepass", password,
    )  # fmt: skip
    bundle = import_pkcs12(store.read_bytes(), password)
    assert bundle.private_key.key_size == 3072
    assert bundle.friendly_name == "cle-java"


def test_keytool_refuses_unicode_passwords(tmp_path: Path, alice: Identity) -> None:
    """Why `scelle keys export` warns about non-ASCII passwords: Java cannot open such files."""
    pfx = export_ours(tmp_path, alice, PASSWORDS[1], legacy=False)
    done = subprocess.run(
        [require_tool("keytool"), "-list", "-storetype", "PKCS12", "-keystore", str(pfx),
         "-storepass", PASSWORDS[1]],
        capture_output=True, check=False,
    )  # fmt: skip
    assert done.returncode != 0, done.stdout
