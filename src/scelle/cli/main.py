"""The `scelle` command: parsing, and the one place where errors become exit codes.

Exit status: 0 done; 1 the command could not do what was asked (one line on
stderr, a traceback only with --debug); 2 the command line itself is wrong;
130 interrupted.
"""

from __future__ import annotations

import inspect
import sys
import traceback
from collections.abc import Iterator

import click

from scelle import __version__
from scelle.assistant.i18n import gettext_of, language, translate, use_for_click
from scelle.cli.session import Session
from scelle.core.errors import ScelleError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the traceback of errors.")
@click.version_option(__version__, prog_name="scelle")
@click.pass_context
def cli(context: click.Context, debug: bool) -> None:
    """Scellé: sealed bids for public procurement.

    Key pairs live in this workstation's store ($SCELLE_HOME); envelopes are
    CMS files (AES-256-GCM, RSA-OAEP) that OpenSSL also opens.
    """
    session = context.ensure_object(Session)
    session.debug = debug


def _register() -> None:
    from scelle.cli.agents import agents
    from scelle.cli.assistant import assistant
    from scelle.cli.crypt import decrypt, encrypt
    from scelle.cli.deposits import deposit, deposits, open_, receipts, tender_deposits
    from scelle.cli.keys import keys
    from scelle.cli.platform import admin, serve
    from scelle.cli.remote import login, logout, service_keys, tenders

    cli.add_command(keys)
    cli.add_command(assistant)
    cli.add_command(agents)
    cli.add_command(serve)
    cli.add_command(admin)
    cli.add_command(login)
    cli.add_command(logout)
    cli.add_command(service_keys)
    cli.add_command(tenders)
    tenders.add_command(tender_deposits)
    cli.add_command(deposit)
    cli.add_command(deposits)
    cli.add_command(receipts)
    cli.add_command(open_)
    cli.add_command(encrypt)
    cli.add_command(decrypt)


def help_texts(command: click.Command) -> Iterator[str]:
    """Every help text of `command` and below, as written (the catalogue's msgids:
    scripts/help-texts lists them for makemessages)."""
    _translate_help(command, "en")
    yield from _help_texts(command)


def _help_texts(command: click.Command) -> Iterator[str]:
    if command.help:
        yield inspect.cleandoc(command.help.split("\f", 1)[0])
    if command.short_help:
        yield command.short_help
    for param in command.params:
        if isinstance(param, click.Option) and param.help:
            yield param.help
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from _help_texts(command.commands[name])


_ORIGINAL_HELP: dict[tuple[int, str], str | None] = {}
"""Each help text as written (English), by its holder (a command or an option)."""


def _in_language(holder: click.Command | click.Parameter, attribute: str, lang: str) -> None:
    key = (id(holder), attribute)
    if key not in _ORIGINAL_HELP:
        text = getattr(holder, attribute)
        if text and isinstance(holder, click.Command) and attribute == "help":
            text = inspect.cleandoc(text.split("\f", 1)[0])
        _ORIGINAL_HELP[key] = text
    original = _ORIGINAL_HELP[key]
    if original:
        setattr(holder, attribute, translate(lang, original))


def _translate_help(command: click.Command, lang: str) -> None:
    """`--help` in the user's language, from the same catalogue as the messages: set at
    each run from the texts as written, so that a run in English after one in French
    (the same process, as in the tests) is in English again."""
    _in_language(command, "help", lang)
    _in_language(command, "short_help", lang)
    for param in command.params:
        if isinstance(param, click.Option):
            _in_language(param, "help", lang)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _translate_help(sub, lang)


_register()


def run(args: list[str] | None = None, session: Session | None = None) -> int:
    """Run the command line and return its exit status."""
    debug = "--debug" in (args if args is not None else sys.argv[1:])
    lang = language()
    use_for_click(lang)
    _translate_help(cli, lang)
    try:
        cli.main(args=args, prog_name="scelle", standalone_mode=False, obj=session)
    except click.exceptions.Abort:
        click.echo("scelle: interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as error:
        error.show()
        return EXIT_USAGE if isinstance(error, click.UsageError) else EXIT_FAILURE
    except click.exceptions.Exit as done:
        return int(done.exit_code)
    except KeyboardInterrupt:
        click.echo("scelle: interrupted", err=True)
        return EXIT_INTERRUPTED
    except ScelleError as error:
        if debug:
            traceback.print_exc()
        click.echo(f"scelle: {error.diagnostics(gettext_of(language()))}", err=True)
        return EXIT_FAILURE
    except OSError as error:
        if debug:
            traceback.print_exc()
        where = f" ({error.filename})" if error.filename else ""
        click.echo(f"scelle: {error.strerror or error}{where}", err=True)
        return EXIT_FAILURE
    return EXIT_OK


def main() -> None:
    sys.exit(run())
