"""`scelle assistant`: this workstation's assistant, driven by the platform's pages."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import click

from scelle.cli.console import say
from scelle.cli.remote import connect, home_of
from scelle.cli.session import Session, pass_session
from scelle.core.errors import NotAuthenticatedError
from scelle.i18n import _


def _stamp(message: str) -> None:
    say(f"{dt.datetime.now().astimezone():%H:%M:%S} {message}")


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
    "--keyring", "use_keyring", is_flag=True,
    help="Take the store passphrase from the system's keyring (asked once, then kept there).",
)  # fmt: skip
@pass_session
def assistant(
    session: Session,
    workstation: str | None,
    openings: Path | None,
    no_browser: bool,
    use_keyring: bool,
) -> None:
    """Run the assistant the platform's pages give work to (Traitements distants).

    It logs in as `scelle login` did, asks the platform for jobs (it never listens
    for it), adds key pairs to this workstation's store and opens tenders'
    envelopes into the openings folder. Stop it with Ctrl-C.

    \f

    Long because it sets the assistant up from its options (login, keyring, window,
    openings folder) before its loop starts.
    """
    from scelle.assistant.config import load_config, save_config
    from scelle.assistant.remote import Assistant
    from scelle.assistant.window import Window

    home = home_of(session)
    config = load_config(home)
    if workstation is not None or openings is not None:
        config = save_config(
            home,
            type(config)(
                workstation=workstation or config.workstation,
                openings=(openings.resolve() if openings else config.openings),
            ),
        )
    client = connect(session)
    if use_keyring:
        from scelle.cli.console import keyring_passphrase

        session.store.passphrase = keyring_passphrase(home)
    session.store.unlock()  # the passphrase, once, before anything runs
    helper = Assistant(client, session.store, config, clock=session.clock, say=_stamp)
    helper.beat()
    say(
        _(
            "The Scellé assistant runs on {workstation} for {url}; openings go to {folder}. "
            "Stop it with Ctrl-C.",
            workstation=config.workstation,
            url=client.url,
            folder=config.openings,
        )
    )
    window = Window(helper, home)
    window.start()
    say(_("Its window (this workstation only): {url}", url=window.url))
    if not no_browser:
        import webbrowser

        webbrowser.open(window.url)
    stop = threading.Event()
    try:
        helper.run(stop)
    except NotAuthenticatedError as error:
        raise NotAuthenticatedError(
            _("the platform no longer accepts this workstation's login ({message})",
              message=error.message),
            hint=_("Your login expired or was revoked: run `scelle login URL --email E` again."),
        ) from None  # fmt: skip
    finally:
        stop.set()
        window.close()
        helper.goodbye()
        client.close()
