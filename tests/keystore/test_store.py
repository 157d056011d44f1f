"""The local store: permissions, sealing at rest, names, passphrase, deletion."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from scelle.core import certs
from scelle.core.errors import (
    DuplicateKeyError,
    InvalidInputError,
    KeyNotFoundError,
    NotExportableError,
    WeakPasswordError,
    WrongPasswordError,
)
from scelle.keystore import KeyStore, StoredKey
from tests.conftest import NOW, STORE_PASSPHRASE, Identity


def add(store: KeyStore, name: str, identity: Identity, *, exportable: bool = True) -> StoredKey:
    return store.add(
        name, identity.key, identity.certificate, exportable=exportable, origin="generated", now=NOW
    )


def test_files_are_private_and_keys_sealed(store: KeyStore, alice: Identity) -> None:
    add(store, "BICLEVIDEOTUTO", alice)
    for path in [store.home, *store.home.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path
    pkcs8 = certs.private_key_to_pkcs8(alice.key)
    prime = alice.key.private_numbers().p.to_bytes(128, "big")
    for path in store.home.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert pkcs8 not in content and prime not in content, path
            assert b"PRIVATE KEY" not in content, path


def test_round_trip_and_listing(store: KeyStore, alice: Identity, bob: Identity) -> None:
    add(store, "zeta", alice)
    add(store, "Service des marchés", bob)
    assert [key.name for key in store.key_pairs()] == ["Service des marchés", "zeta"]
    assert store.get("SERVICE DES MARCHÉS").certificate == bob.certificate
    assert store.private_key("zeta").private_numbers() == alice.key.private_numbers()
    listed = store.get("zeta").to_json()
    assert listed["cn"] == "alice"
    assert listed["fingerprint_sha256"] == certs.fingerprint_sha256(alice.certificate)
    assert listed["not_after"] == "2028-11-21T09:30:00+00:00"  # 730 days, 2028 is a leap year
    assert listed["exportable"] is True


def test_a_fresh_store_needs_a_strong_passphrase(tmp_path: Path, alice: Identity) -> None:
    weak = KeyStore(tmp_path / "home", lambda _new: "1234")
    with pytest.raises(WeakPasswordError):
        add(weak, "k", alice)
    assert not (tmp_path / "home" / "store.json").exists()


def test_wrong_passphrase(store: KeyStore, alice: Identity) -> None:
    add(store, "k", alice)
    other = KeyStore(store.home, lambda _new: "Pas-la-bonne-phrase-2026")
    assert [key.name for key in other.key_pairs()] == ["k"]  # listing needs no passphrase
    with pytest.raises(WrongPasswordError, match="wrong store passphrase"):
        other.private_key("k")


def test_passphrase_is_asked_once_per_store_object(
    tmp_path: Path, alice: Identity, bob: Identity
) -> None:
    asked: list[bool] = []

    def provider(new: bool) -> str:
        asked.append(new)
        return STORE_PASSPHRASE

    store = KeyStore(tmp_path / "home", provider)
    add(store, "a", alice)
    add(store, "b", bob)
    store.private_key("a")
    assert asked == [True]
    again = KeyStore(tmp_path / "home", provider)
    again.decryption_keys()
    assert asked == [True, False]


def test_duplicates_are_refused_and_nothing_is_written(
    store: KeyStore, alice: Identity, bob: Identity
) -> None:
    add(store, "Clé", alice)
    before = sorted(path.name for path in (store.home / "keys").iterdir())
    with pytest.raises(DuplicateKeyError, match="named 'Clé'"):
        add(store, "clé", bob)
    with pytest.raises(DuplicateKeyError, match="already in the store as 'Clé'"):
        add(store, "autre", alice)
    assert sorted(path.name for path in (store.home / "keys").iterdir()) == before


@pytest.mark.parametrize("name", ["", "   ", "a" * 65, "tab\there"])
def test_bad_names(store: KeyStore, alice: Identity, name: str) -> None:
    with pytest.raises(InvalidInputError):
        add(store, name, alice)


def test_mismatched_certificate_is_refused(store: KeyStore, alice: Identity, bob: Identity) -> None:
    with pytest.raises(InvalidInputError, match="does not belong"):
        store.add("x", alice.key, bob.certificate, origin="imported", now=NOW)


def test_not_exportable(store: KeyStore, alice: Identity) -> None:
    add(store, "k", alice, exportable=False)
    with pytest.raises(NotExportableError):
        store.export_bundle("k")
    assert store.decryption_keys(["k"])[0].certificate == alice.certificate


def test_delete(store: KeyStore, alice: Identity) -> None:
    add(store, "k", alice)
    assert store.delete("K").name == "k"
    assert store.key_pairs() == []
    assert [path.name for path in (store.home / "keys").iterdir()] == []
    with pytest.raises(KeyNotFoundError):
        store.delete("k")


def test_sealed_keys_cannot_be_swapped_between_entries(
    store: KeyStore, alice: Identity, bob: Identity
) -> None:
    a = add(store, "a", alice)
    b = add(store, "b", bob)
    keys = store.home / "keys"
    (keys / a.id / "key.sealed").write_bytes((keys / b.id / "key.sealed").read_bytes())
    with pytest.raises(WrongPasswordError):
        KeyStore(store.home, lambda _new: STORE_PASSPHRASE).private_key("a")


def test_interrupted_add_leaves_no_entry(
    store: KeyStore, alice: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scelle.keystore.store as module

    calls = {"count": 0}
    real = module.write_private_file  # type: ignore[attr-defined]

    def failing(path: Path, data: bytes, **options: bool) -> None:
        calls["count"] += 1
        if path.name == "meta.json":
            raise OSError(28, "No space left on device")
        real(path, data, **options)

    store.unlock()
    monkeypatch.setattr(module, "write_private_file", failing)
    with pytest.raises(OSError):
        add(store, "k", alice)
    assert store.key_pairs() == []
    assert list((store.home / "keys").iterdir()) == []


def test_store_document(store: KeyStore, alice: Identity) -> None:
    add(store, "k", alice)
    document = json.loads((store.home / "store.json").read_text())
    assert document["kdf"]["name"] == "argon2id"
    assert document["kdf"]["memory_kib"] >= 19 * 1024


def test_replace_certificate_keeps_the_key(store, alice, bob) -> None:
    from scelle.core import authority

    store.add("BICLE", alice.key, alice.certificate, origin="generated", now=NOW)
    ca = authority.create_authority("CA de test", now=NOW)
    request = authority.load_csr(authority.build_csr(alice.key, "BICLE"))
    issued = authority.issue_encryption_certificate(
        ca, request, organisation="O", service="S", days=730, now=NOW
    )
    replaced = store.replace_certificate("bicle", issued, [ca.certificate])
    assert replaced.certificate == issued and replaced.chain == (ca.certificate,)
    assert replaced.issuer == "CA de test"
    assert store.get("BICLE").certificate == issued
    assert (store.home / "keys" / replaced.id / "cert.pem").stat().st_mode & 0o777 == 0o600
    with pytest.raises(InvalidInputError, match="does not belong"):
        store.replace_certificate("BICLE", bob.certificate)
    assert store.get("BICLE").certificate == issued
