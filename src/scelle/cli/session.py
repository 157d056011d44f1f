"""What every command shares: the clock and this workstation's store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click

from scelle.core.clock import Clock, system_clock
from scelle.keystore import KeyStore, default_home


@dataclass
class Session:
    """What every command shares: the clock and the local store."""

    clock: Clock = system_clock
    home: Path | None = None
    debug: bool = False
    _store: KeyStore | None = field(default=None, init=False, repr=False)

    @property
    def store(self) -> KeyStore:
        if self._store is None:
            from scelle.cli.console import store_passphrase

            self._store = KeyStore(self.home or default_home(), store_passphrase)
        return self._store


pass_session = click.make_pass_decorator(Session, ensure=True)
