"""What the command says and asks: prompts for secrets, progress bars, tables.

Everything interactive happens only on a terminal; piped or in CI the command
stays quiet and takes its secrets from files or the environment.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from scelle.core.errors import InvalidInputError, WrongPasswordError
from scelle.i18n import _, language

if TYPE_CHECKING:
    from rich.console import Console

    from scelle.core.envelope import ProgressCallback

_Command = TypeVar("_Command", bound=Callable[..., Any])

STORE_PASSPHRASE_VARIABLE = "SCELLE_STORE_PASSPHRASE"  # noqa: S105 - a variable name


def password_file_option(
    help: str = "Read the password from the first line of this file.",
) -> Callable[[_Command], _Command]:
    """--password-file, the same on every command that takes a password."""
    return click.option(
        "--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help=help
    )


force_option = click.option("--force", is_flag=True, help="Overwrite the output file.")


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def read_password_file(path: Path) -> str:
    """The first line of `path`, without its line ending."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InvalidInputError(f"cannot read the password file {path}: {error.strerror}") from None
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise InvalidInputError(f"the password file {path} is not UTF-8 text") from None
    return text.split("\n", 1)[0].removesuffix("\r")


def ask_password(
    prompt: str, *, password_file: Path | None, confirm: bool, what: str = "a password"
) -> str:
    """A password from `password_file`, else typed on the terminal (twice when `confirm`)."""
    if password_file is not None:
        return read_password_file(password_file)
    if not interactive():
        raise InvalidInputError(
            f"{what} is needed: pass --password-file FILE, or run the command on a terminal"
        )
    first = click.prompt(prompt, hide_input=True, err=True, default="", show_default=False)
    if confirm:
        second = click.prompt(
            _("Repeat the password"), hide_input=True, err=True, default="", show_default=False
        )
        if first != second:
            raise WrongPasswordError(_("The two passwords differ."))
    return str(first)


def _secret(variable: str, what: str, prompt: str, *, confirm: bool = False) -> str:
    """A secret from the environment variable `variable`, else typed on the terminal."""
    configured = os.environ.get(variable)
    if configured is not None:
        return configured
    if not interactive():
        raise InvalidInputError(
            f"{what} is needed: set {variable}, or run the command on a terminal"
        )
    return ask_password(prompt, password_file=None, confirm=confirm, what=what)


def store_passphrase(new: bool) -> str:
    """The store passphrase: `SCELLE_STORE_PASSPHRASE`, else asked on the terminal."""
    prompt = (
        _("New passphrase of this workstation's store")
        if new
        else _("Passphrase of this workstation's store")
    )
    return _secret(STORE_PASSPHRASE_VARIABLE, "the store passphrase", prompt, confirm=new)


TOKEN_PIN_VARIABLE = "SCELLE_TOKEN_PIN"  # noqa: S105 - a variable name


def token_pin(label: str) -> str:
    """A token's PIN: `SCELLE_TOKEN_PIN`, else asked on the terminal; never kept."""
    prompt = _("PIN of the token {label}", label=label)
    return _secret(TOKEN_PIN_VARIABLE, f"the PIN of the token {label}", prompt)


def keyring_passphrase(home: Path) -> Callable[[bool], str]:
    """The store passphrase kept in the system's keyring (Windows Credential Manager,
    macOS Keychain, Secret Service), asked and saved there the first time."""
    import keyring
    import keyring.errors

    account = str(home.resolve())

    def provide(new: bool) -> str:
        try:
            kept = keyring.get_password("scelle", account)
        except keyring.errors.KeyringError as error:
            raise InvalidInputError(f"the system's keyring cannot be read: {error}") from None
        if kept is not None and not new:
            return kept
        passphrase = store_passphrase(new)
        try:
            keyring.set_password("scelle", account, passphrase)
        except keyring.errors.KeyringError as error:
            raise InvalidInputError(f"the system's keyring cannot keep it: {error}") from None
        return passphrase

    return provide


_UNITS = {"en": ("B", "kB", "MB", "GB", "TB"), "fr": ("o", "ko", "Mo", "Go", "To")}


def human_size(size: int) -> str:
    """A size as people read it: 314.6 MB (314,6 Mo in French), powers of 1,000."""
    units = _UNITS[language()]
    value, unit = float(size), 0
    while value >= 1000 and unit < len(units) - 1:
        value, unit = value / 1000, unit + 1
    shown = f"{size}" if unit == 0 else f"{value:.1f}"
    if language() == "fr":
        shown = shown.replace(".", ",")
    return f"{shown} {units[unit]}"


def say(message: str) -> None:
    """A line for the user, on stderr so that stdout stays for data."""
    click.echo(message, err=True)


ProgressFactory = Callable[[str, int | None], "ProgressCallback | None"]


def plain_console(**options: Any) -> Console:  # noqa: ANN401 - rich's keywords
    """A rich console that prints text as it is: no markup, no emoji codes, no
    highlighting. Names come from the platform, and a fingerprint holds ":CD:",
    which rich would otherwise print as an emoji."""
    from rich.console import Console

    return Console(markup=False, emoji=False, highlight=False, **options)


@contextlib.contextmanager
def progress_bars() -> Iterator[ProgressFactory]:
    """A factory of progress bars, one per phase (label, total bytes), on a terminal only."""
    if not sys.stderr.isatty():
        yield lambda _label, _total: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=plain_console(stderr=True), transient=True) as progress:

        def bar(label: str, total: int | None) -> ProgressCallback:
            task = progress.add_task(_(label), total=total)
            return lambda done: progress.advance(task, done)

        yield bar


@contextlib.contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[ProgressCallback | None]:
    """One progress bar on a terminal; nothing (None) when stderr is not one."""
    with progress_bars() as bars:
        yield bars(description, total)


@contextlib.contextmanager
def spinner(description: str) -> Iterator[None]:
    """A spinner on a terminal while something slow and unmeasurable runs."""
    if not sys.stderr.isatty():
        yield
        return
    with plain_console(stderr=True).status(description):
        yield
