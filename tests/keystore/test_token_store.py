"""A token's key pairs beside the store's, as the command and the assistant use them
(SoftHSM2 standing in for a smart card): made there, listed without the PIN, used with
it, certified by a CA in place, never exported."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from scelle.cli.main import EXIT_FAILURE, EXIT_OK, run
from scelle.cli.session import Session
from scelle.core import authority, envelope
from scelle.core.errors import DuplicateKeyError, InvalidInputError, NotExportableError
from scelle.keystore import KeyStore
from scelle.keystore.token import Token, TokenURI
from tests.conftest import NOW, STORE_PASSPHRASE, Identity, SoftHSM


def _label(prefix: str) -> str:
    """Every test's key pairs under names of their own: the process shares one token."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _no_pin(_label: str) -> str:
    raise AssertionError("the PIN was asked for")


@pytest.fixture
def tokens(softhsm: SoftHSM) -> Iterator[Callable[..., Token]]:
    """Tokens for the test, closed after it: PKCS#11 logs in a process, not a session, so
    a login left open would let the next test's wrong PIN through."""
    made: list[Token] = []

    def make(pin: str | None = None, provider: Callable[[str], str] | None = None) -> Token:
        given = pin or softhsm.pin
        made.append(
            Token(softhsm.module, TokenURI.parse(softhsm.uri), provider or (lambda _l: given))
        )
        return made[-1]

    yield make
    for token in made:
        token.close()


def _sealed_to(stored_certificate: x509.Certificate, plaintext: bytes) -> bytes:
    out = io.BytesIO()
    keys = envelope.EnvelopeKeys.for_recipients([stored_certificate])
    envelope.encrypt_stream(io.BytesIO(plaintext), out, keys)
    return out.getvalue()


def test_a_key_pair_made_on_the_token_is_listed_used_certified_and_never_exported(
    tokens: Callable[..., Token], tmp_path: Path
) -> None:
    token = tokens()
    store = KeyStore(tmp_path / "home", lambda _new: STORE_PASSPHRASE, token=token)
    name = _label("Marchés")
    made = token.generate(name, "Agent des marchés", bits=2048, days=730, now=NOW)
    token.close()
    assert made.self_signed and made.origin == "token" and not made.exportable
    assert made.token is not None and TokenURI.parse(made.token).object == name

    # Listed from the token's public objects: no PIN, and nothing of the store's passphrase.
    listing = tokens(provider=_no_pin)
    seen = KeyStore(tmp_path / "home", lambda _new: pytest.fail("passphrase"), token=listing)
    assert seen.get(name.upper()).fingerprint_sha256 == made.fingerprint_sha256
    assert not (tmp_path / "home" / "store.json").exists()

    # Used with the PIN: an envelope sealed to its certificate opens through the token.
    plaintext = os.urandom(100_000)
    opened = io.BytesIO()
    envelope.decrypt_stream(
        io.BytesIO(_sealed_to(made.certificate, plaintext)), opened, store.decryption_keys([name])
    )
    assert opened.getvalue() == plaintext

    # Certified by a CA: its certificate replaces the self-signed one on the token.
    ca = authority.create_authority("Plateforme — autorité", now=NOW)
    request = authority.load_csr(authority.build_csr(store.private_key(name), made.cn))
    issued = authority.issue_encryption_certificate(
        ca, request, organisation="Ville", service="Marchés", days=700, now=NOW
    )
    certified = store.replace_certificate(name, issued, [ca.certificate])
    assert certified.certificate == issued and certified.chain == (ca.certificate,)
    assert [k for k in token.key_pairs() if k.name == name] == [certified]

    with pytest.raises(NotExportableError, match="lives on a token") as refused:
        store.export_bundle(name)
    assert "Carry the token itself" in str(refused.value.hint)
    with pytest.raises(DuplicateKeyError):
        store.check_name_free(name.lower())
    with pytest.raises(DuplicateKeyError, match="already holds"):
        token.generate(name, "Autre", bits=2048, days=30, now=NOW)

    store.delete(name)
    assert name not in {key.name for key in token.key_pairs()}


def test_the_token_and_the_store_list_together_and_each_key_opens_its_own(
    tokens: Callable[..., Token], tmp_path: Path, alice: Identity
) -> None:
    token = tokens()
    store = KeyStore(tmp_path / "home", lambda _new: STORE_PASSPHRASE, token=token)
    on_token = token.generate(_label("A-carte"), "Carte", bits=2048, days=30, now=NOW)
    in_store = store.add("Z-magasin", alice.key, alice.certificate, origin="imported", now=NOW)
    names = [key.name for key in store.key_pairs()]
    assert names.index(on_token.name) < names.index(in_store.name)
    keys = store.decryption_keys()
    for certificate in (on_token.certificate, in_store.certificate):
        opened = io.BytesIO()
        envelope.decrypt_stream(io.BytesIO(_sealed_to(certificate, b"pli")), opened, keys)
        assert opened.getvalue() == b"pli"
    store.delete(on_token.name)


def test_a_wrong_pin_is_said_and_the_right_one_still_works(
    softhsm: SoftHSM, tokens: Callable[..., Token]
) -> None:
    wrong = tokens(pin="000000")
    with pytest.raises(InvalidInputError, match="wrong PIN for the token Carte agent"):
        wrong.unlock()
    assert not wrong.unlocked
    wrong.unlock(softhsm.pin)
    assert wrong.unlocked


def _scelle(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = run(list(args), Session(clock=lambda: NOW + dt.timedelta(minutes=1)))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_the_command_makes_lists_and_opens_with_a_token_key_pair_and_refuses_its_export(
    softhsm: SoftHSM,
    scelle_env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable, value in softhsm.environment().items():
        monkeypatch.setenv(variable, value)
    name = _label("BICLE")
    status, _, err = _scelle(capsys, "keys", "generate", name, "--token", softhsm.uri, "--cn",
                             "Agent", "--bits", "3072")  # fmt: skip
    assert status == EXIT_OK, err
    assert f"The key pair {name} has been created on the token Carte agent" in err
    status, out, _ = _scelle(capsys, "keys", "list", "--json", "--token", softhsm.uri)
    listed = {key["name"]: key for key in json.loads(out)}
    assert listed[name]["origin"] == "token" and listed[name]["key_size"] == 3072
    assert listed[name]["token"].startswith(softhsm.uri + ";object=")
    status, out, _ = _scelle(capsys, "keys", "list", "--json")  # the store alone
    assert name not in out

    certificate = tmp_path / "cert.pem"
    status, _, err = _scelle(capsys, "keys", "cert", name, "--token", softhsm.uri,
                             "-o", str(certificate))  # fmt: skip
    assert status == EXIT_OK, err
    source = tmp_path / "offre.pdf"
    source.write_bytes(os.urandom(70_000))
    assert _scelle(capsys, "encrypt", str(source), "-r", str(certificate))[0] == EXIT_OK
    source.unlink()
    status, _, err = _scelle(capsys, "decrypt", f"{source}.p7m", "--token", softhsm.uri)
    assert status == EXIT_OK, err
    assert source.stat().st_size == 70_000

    password = tmp_path / "password"
    password.write_text("Export-très-solide-2026!")
    status, _, err = _scelle(capsys, "keys", "export", name, "-o", str(tmp_path / "k.pfx"),
                             "--password-file", str(password), "--token", softhsm.uri)  # fmt: skip
    assert status == EXIT_FAILURE
    assert "lives on a token: its private key cannot leave it" in err
    assert not (tmp_path / "k.pfx").exists()

    monkeypatch.delenv("SCELLE_TOKEN_PIN")
    status, _, err = _scelle(capsys, "decrypt", f"{source}.p7m", "-o", str(tmp_path / "again"),
                             "--token", softhsm.uri)  # fmt: skip
    assert status == EXIT_FAILURE
    assert "the PIN of the token Carte agent is needed: set SCELLE_TOKEN_PIN" in err
    monkeypatch.setenv("SCELLE_TOKEN_PIN", softhsm.pin)
    assert _scelle(capsys, "keys", "delete", name, "--yes", "--token", softhsm.uri)[0] == EXIT_OK


# python-pkcs11's object search ends itself again when collected, on the dead session: that
# second failure is printed by the library, not ours to see.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_token_out_of_its_reader_is_said_and_leaves_the_store_working(
    softhsm: SoftHSM, tokens: Callable[..., Token], tmp_path: Path, alice: Identity
) -> None:
    from scelle.assistant.remote import reported_key_pairs
    from scelle.core.errors import KeyNotFoundError

    absent = Token(softhsm.module, TokenURI.parse("pkcs11:token=Absente"), _no_pin)
    store = KeyStore(tmp_path / "home", lambda _new: STORE_PASSPHRASE, token=absent)
    store.add("MAGASIN", alice.key, alice.certificate, origin="imported", now=NOW)
    with pytest.raises(KeyNotFoundError, match="no single token matches pkcs11:token=Absente"):
        store.key_pairs()
    # The assistant's heartbeat still says what the store holds.
    assert [entry["name"] for entry in reported_key_pairs(store)] == ["MAGASIN"]

    # A session the token dropped (a card pulled out) is said once, then logged in again.
    token = tokens()
    made = token.generate(_label("Retirée"), "Carte", bits=2048, days=30, now=NOW)
    token._live.close()  # what the card's removal does to the session
    with pytest.raises(InvalidInputError, match=r"stopped answering .* is it in its reader"):
        token.private_key(made)
    assert not token.unlocked
    assert token.private_key(made).key_size == 2048
    token.delete(made)


def test_the_assistant_asks_no_pin_itself_a_locked_token_says_where_to_type_it(
    softhsm: SoftHSM, tokens: Callable[..., Token], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scelle.assistant.config import AssistantConfig, use_token

    monkeypatch.setenv("SCELLE_PKCS11_MODULE", softhsm.module)
    monkeypatch.delenv("SCELLE_TOKEN_PIN", raising=False)
    made = tokens().generate(_label("Verrou"), "Carte", bits=2048, days=30, now=NOW)
    store = KeyStore(tmp_path / "home", lambda _new: STORE_PASSPHRASE)
    use_token(store, AssistantConfig("POSTE", tmp_path / "plis", token=softhsm.uri))
    assert store.token is not None and made.name in {key.name for key in store.key_pairs()}
    with pytest.raises(InvalidInputError, match="type its PIN in the assistant's window"):
        store.private_key(made.name)
    store.token.unlock(softhsm.pin)  # what the window's form does
    assert store.private_key(made.name).key_size == 2048
    store.delete(made.name)
    store.token.close()


def test_a_card_that_keeps_no_public_key_object_still_lists_and_opens(
    tokens: Callable[..., Token],
) -> None:
    """Many cards keep the private key and the certificate only: they pair by CKA_ID."""
    from pkcs11 import Attribute, ObjectClass

    token = tokens()
    made = token.generate(_label("Sans-publique"), "Carte", bits=2048, days=30, now=NOW)
    token.unlock()
    for item in list(
        token._live.get_objects(
            {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.LABEL: made.name}
        )
    ):
        item.destroy()
    listed = [key for key in token.key_pairs() if key.name == made.name]
    assert listed == [made]
    opened = io.BytesIO()
    envelope.decrypt_stream(
        io.BytesIO(_sealed_to(made.certificate, b"pli")),
        opened,
        [envelope.DecryptionKey(token.private_key(made), made.certificate)],
    )
    assert opened.getvalue() == b"pli"
    token.delete(made)
