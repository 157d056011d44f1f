"""Shared fixtures: keys and certificates, a clock, a store, the external tools."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scelle.core import certs
from scelle.core.clock import TEST_CLOCK_VARIABLE
from scelle.core.envelope import DecryptionKey
from scelle.keystore import KeyStore

NOW = dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.UTC)
STORE_PASSPHRASE = "Magasin-de-test-2026!"
PFX_PASSWORD = "Export-Bi-clé-2026!"


LOCALE_VARIABLES = ("SCELLE_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def pytest_configure(config: pytest.Config) -> None:
    # A suite started with SIGINT ignored (`&` in a script, nohup) would pass that on to
    # every process it starts, and the journeys' Ctrl-C would never arrive: the processes
    # the tests start get Python's own handler back, as from a terminal.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _same_environment_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts in English whatever the shell's locale, with no moved clock: a
    test that wants French or a clock says so."""
    for name in (*LOCALE_VARIABLES, TEST_CLOCK_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


@dataclass(frozen=True)
class Identity:
    """A key pair as a buyer holds it, with its PEM files for external tools."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    key_pem: Path
    cert_pem: Path

    @property
    def decryption_key(self) -> DecryptionKey:
        return DecryptionKey(self.key, self.certificate)


def make_identity(directory: Path, name: str, *, bits: int = 2048) -> Identity:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    certificate = certs.self_signed_certificate(key, name, days=730, now=NOW)
    directory.mkdir(parents=True, exist_ok=True)
    key_pem = directory / f"{name}.key.pem"
    cert_pem = directory / f"{name}.cert.pem"
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_pem.write_bytes(certs.certificate_pem(certificate))
    return Identity(key, certificate, key_pem, cert_pem)


@pytest.fixture(scope="session")
def identities(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Identity]:
    """Three RSA-2048 identities (2048 keeps the suite fast; sizes are tested apart)."""
    directory = tmp_path_factory.mktemp("identities")
    return {name: make_identity(directory, name) for name in ("alice", "bob", "carol")}


@pytest.fixture
def alice(identities: dict[str, Identity]) -> Identity:
    return identities["alice"]


@pytest.fixture
def bob(identities: dict[str, Identity]) -> Identity:
    return identities["bob"]


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "home", lambda _new: STORE_PASSPHRASE)


@pytest.fixture
def scelle_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """SCELLE_HOME and the store passphrase set for the command line; yields the home."""
    home = tmp_path / "scelle-home"
    monkeypatch.setenv("SCELLE_HOME", str(home))
    monkeypatch.setenv("SCELLE_STORE_PASSPHRASE", STORE_PASSPHRASE)
    monkeypatch.setenv("SCELLE_LANG", "en")
    yield home


def require_tool(name: str) -> str:
    """The path of an external tool, or a skip saying how CI installs it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed here (.ci/run installs it with apt-get)")
    return path


SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


@dataclass(frozen=True)
class SoftHSM:
    """A SoftHSM2 token, as a smart card would be: its module, its URI, its PIN."""

    module: str
    label: str
    pin: str
    conf: Path

    @property
    def uri(self) -> str:
        return "pkcs11:token=" + self.label.replace(" ", "%20")

    def environment(self) -> dict[str, str]:
        """What `scelle` needs to use the token, PIN included (as a script would)."""
        return {
            "SOFTHSM2_CONF": str(self.conf),
            "SCELLE_PKCS11_MODULE": self.module,
            "SCELLE_TOKEN_PIN": self.pin,
        }


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHSM]:
    """One SoftHSM2 token per test process, in a temporary folder (SOFTHSM2_CONF). The
    module reads its configuration and finds its tokens once per process, so every test
    of a process shares this token, each with key pairs of its own labels."""
    util = require_tool("softhsm2-util")
    if not Path(SOFTHSM_MODULE).exists():
        pytest.skip(f"no SoftHSM2 module at {SOFTHSM_MODULE} (.ci/run installs softhsm2)")
    folder = tmp_path_factory.mktemp("softhsm")
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n")
    saved = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    token = SoftHSM(SOFTHSM_MODULE, "Carte agent", "123456", conf)
    subprocess.run(
        [util, "--init-token", "--free", "--label", token.label, "--pin", token.pin,
         "--so-pin", "87654321"],
        check=True, capture_output=True,
    )  # fmt: skip
    yield token
    if saved is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = saved
