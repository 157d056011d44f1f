"""What every command shares: the clock and this workstation's store."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from scelle.core.clock import Clock, clock_from_environment

if TYPE_CHECKING:
    from scelle.keystore import KeyStore

_Command = TypeVar("_Command", bound=Callable[..., Any])


@dataclass
class Session:
    """What every command shares: the clock and the local store."""

    clock: Clock = field(default_factory=lambda: clock_from_environment(os.environ))
    home: Path | None = None
    debug: bool = False
    token: str | None = None
    """A PKCS#11 URI (--token, SCELLE_TOKEN): the token whose key pairs the store uses."""
    _store: KeyStore | None = field(default=None, init=False, repr=False)

    @property
    def store(self) -> KeyStore:
        if self._store is None:
            from scelle.cli.console import store_passphrase
            from scelle.keystore import KeyStore, default_home

            self._store = KeyStore(self.home or default_home(), store_passphrase)
            uri = self.token or os.environ.get(TOKEN_VARIABLE)
            if uri:
                from scelle.cli.console import token_pin
                from scelle.keystore.token import Token, TokenURI, module_path

                self._store.token = Token(module_path(os.environ), TokenURI.parse(uri), token_pin)
        return self._store

    def close(self) -> None:
        """Log out of the token, if the command used one."""
        if self._store is not None and self._store.token is not None:
            self._store.token.close()

    def use_token(self, uri: str | None) -> None:
        """Use the token `uri` from now on (before the store is first used)."""
        if uri:
            self.token = uri
            self._store = None


TOKEN_VARIABLE = "SCELLE_TOKEN"  # noqa: S105 - a variable name


def token_option(command: _Command) -> _Command:
    """--token URI: the key pairs of this PKCS#11 token beside the store's (SCELLE_TOKEN)."""

    def remember(context: click.Context, _param: click.Parameter, value: str | None) -> None:
        context.ensure_object(Session).use_token(value)

    return click.option(
        "--token",
        metavar="URI",
        expose_value=False,
        callback=remember,
        help="A PKCS#11 token (pkcs11:token=…): its key pairs beside the store's "
        "(default: $SCELLE_TOKEN).",
    )(command)


pass_session = click.make_pass_decorator(Session, ensure=True)
