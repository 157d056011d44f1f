"""`scelle assistant --keyring`: the store passphrase kept in the system's keyring."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from scelle.cli.console import keyring_passphrase


class MemoryKeyring(KeyringBackend):
    """A keyring in memory, standing for Windows Credential Manager or macOS Keychain."""

    priority = 1

    kept: dict[tuple[str, str], str]

    def get_password(self, service: str, username: str) -> str | None:
        return self.kept.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.kept[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.kept.pop((service, username), None)


@pytest.fixture
def memory_keyring():
    previous = keyring.get_keyring()
    memory = MemoryKeyring()  # type: ignore[no-untyped-call]
    memory.kept = {}
    keyring.set_keyring(memory)
    yield memory
    keyring.set_keyring(previous)


def test_the_passphrase_is_asked_once_then_read_from_the_keyring(
    memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch
) -> None:
    asked = []

    def ask(new: bool) -> str:
        asked.append(new)
        return "Magasin-de-test-2026!"

    monkeypatch.setattr("scelle.cli.console.store_passphrase", ask)
    provide = keyring_passphrase(tmp_path)
    assert provide(False) == "Magasin-de-test-2026!"
    assert provide(False) == "Magasin-de-test-2026!"
    assert asked == [False]
    assert list(memory_keyring.kept.values()) == ["Magasin-de-test-2026!"]
