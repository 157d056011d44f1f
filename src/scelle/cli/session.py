"""What every command shares: the clock and this workstation's store."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from scelle.core.clock import Clock, clock_from_environment

if TYPE_CHECKING:
    from scelle.keystore import KeyStore


@dataclass
class Session:
    """What every command shares: the clock and the local store."""

    clock: Clock = field(default_factory=lambda: clock_from_environment(os.environ))
    home: Path | None = None
    debug: bool = False
    _store: KeyStore | None = field(default=None, init=False, repr=False)

    @property
    def store(self) -> KeyStore:
        if self._store is None:
            from scelle.cli.console import store_passphrase
            from scelle.keystore import KeyStore, default_home

            self._store = KeyStore(self.home or default_home(), store_passphrase)
        return self._store


pass_session = click.make_pass_decorator(Session, ensure=True)
