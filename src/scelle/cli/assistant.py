"""`scelle assistant`: this workstation's assistant, driven by the platform's pages."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import click

from scelle.assistant.config import use_token
from scelle.cli.console import TOKEN_PIN_VARIABLE, interactive, say, token_pin
from scelle.cli.remote import connect, home_of
from scelle.cli.session import Session, pass_session
from scelle.i18n import _


def _stamp(message: str) -> None:
    say(f"{dt.datetime.now().astimezone():%H:%M:%S} {message}")


def _unlock_token(session: Session) -> None:
    """The token's PIN at start, from SCELLE_TOKEN_PIN or the terminal; else the window."""
    token = session.store.token
    if token is None:
        return
    if os.environ.get(TOKEN_PIN_VARIABLE) is not None:
        token.unlock()
    elif interactive():
        token.unlock(token_pin(token.label))
    else:
        say(_("The token {token} is locked: type its PIN in the assistant's window.",
              token=token.label))  # fmt: skip


@click.command(name="assistant")
@click.option("--workstation", help="This workstation's name on the pages (kept).")
@click.option(
    "--openings", type=click.Path(file_okay=False, path_type=Path),
    help="The folder where opened envelopes go (kept).",
)  # fmt: skip
@click.option(
    "--no-browser", is_flag=True,
    help="Do not open the assistant's window; print its address only.",
)  # fmt: skip
@click.option(
    "--token", metavar="URI",
    help="A PKCS#11 token (pkcs11:token=…) whose key pairs it uses and where it makes new "
    "ones (kept).",
)  # fmt: skip
@click.option("--no-token", is_flag=True, help="Forget the token: the store alone (kept).")
@click.option(
    "--keyring", "use_keyring", is_flag=True,
    help="Take the store passphrase from the system's keyring (asked once, then kept there).",
)  # fmt: skip
@pass_session
def assistant(
    session: Session,
    workstation: str | None,
    openings: Path | None,
    no_browser: bool,
    token: str | None,
    no_token: bool,
    use_keyring: bool,
) -> None:
    """Run the assistant the platform's pages give work to (Traitements distants).

    It logs in as `scelle login` did, asks the platform for jobs (it never listens
    for it), adds key pairs to this workstation's store and opens tenders'
    envelopes into the openings folder. Stop it with Ctrl-C.
    """
    from scelle.assistant import running

    if token and no_token:
        raise click.UsageError("use either --token or --no-token")
    home = home_of(session)
    config = running.settings(
        home, workstation=workstation, openings=openings, token="" if no_token else token
    )
    client = connect(session)
    if use_keyring:
        from scelle.cli.console import keyring_passphrase

        session.store.passphrase = keyring_passphrase(home)
    session.store.unlock()  # the passphrase, once, before anything runs
    use_token(session.store, config)
    _unlock_token(session)
    started = running.start(client, session.store, config, home, clock=session.clock, say=_stamp)
    say(
        _(
            "The Scellé assistant runs on {workstation} for {url}; openings go to {folder}. "
            "Stop it with Ctrl-C.",
            workstation=config.workstation,
            url=client.url,
            folder=config.openings,
        )
    )
    say(_("Its window (this workstation only): {url}", url=started.window.url))
    if not no_browser:
        import webbrowser

        webbrowser.open(started.window.url)
    running.serve_until_stopped(started)
