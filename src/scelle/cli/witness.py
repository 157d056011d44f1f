"""`scelle witness`: an independent witness of platforms' transparency logs."""

from __future__ import annotations

import time

import click

from scelle.cli.console import say
from scelle.cli.remote import home_of
from scelle.cli.session import Session, pass_session
from scelle.client.api import PlatformClient
from scelle.core import note
from scelle.core.errors import LogMisbehaviourError, ScelleError
from scelle.i18n import _, language

LONGEST_WAIT = 24 * 3600


@click.group(name="witness")
def witness() -> None:
    """Witness a platform's transparency log: check it only grows, and cosign it.

    Run by someone other than the platform (a prefecture, a federation of companies):
    companies can then require that a witness they trust saw the same log as they did.
    """


@witness.command(name="key")
@click.option(
    "--name", required=True, help="The witness's name, such as prefecture.example/witness."
)
@pass_session
def key(session: Session, name: str) -> None:
    """Make this workstation's witness key (once), and print it for platforms and
    companies: they name the witness by it."""
    from scelle.assistant.witness import create_key

    signer = create_key(session.store, name)
    click.echo(signer.verifier.vkey)


@witness.command(name="run")
@click.argument("url")
@click.option(
    "--log-key", metavar="KEY",
    help="The log's key, as the platform's operator publishes it (also at URL/log/key); "
    "needed the first time only: the witness then keeps it.",
)  # fmt: skip
@click.option(
    "--every", type=click.IntRange(1, LONGEST_WAIT), default=60, show_default=True,
    help="Seconds between two looks at the log.",
)  # fmt: skip
@click.option("--once", is_flag=True, help="Look once, then stop.")
@pass_session
def run(session: Session, url: str, log_key: str | None, every: int, once: bool) -> None:
    """Follow the platform's log at URL: cosign each new checkpoint that extends the
    last one cosigned; stop, showing both checkpoints, if the log ever contradicts itself."""
    from scelle.assistant.witness import load_key, log_key_of, witness_once

    signer = load_key(session.store)
    home = home_of(session)
    with PlatformClient(url, language=language()) as client:
        log = log_key_of(client, home, None if log_key is None else note.Verifier.parse(log_key))
        while True:
            try:
                done = witness_once(
                    client, home, signer, log, now=lambda: int(session.clock().timestamp())
                )
            except LogMisbehaviourError as error:
                say(_("The two signed checkpoints that prove it:"))
                click.echo(f"{error.earlier}\n{error.later}", err=True)
                raise
            except ScelleError as error:
                if once:
                    raise
                say(error.diagnostics())  # a platform out of reach: look again later
            else:
                if done.cosigned:
                    say(_("Cosigned the log {origin} at {size} entries",
                          origin=log.name, size=done.checkpoint.size))  # fmt: skip
                else:
                    say(_("The log {origin} has not grown since: {size} entries",
                          origin=log.name, size=done.checkpoint.size))  # fmt: skip
            if once:
                return
            time.sleep(every)
