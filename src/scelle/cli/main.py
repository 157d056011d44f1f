"""The `scelle` command: parsing, and the one place where errors become exit codes.

Exit status: 0 done; 1 the command could not do what was asked (one line on
stderr, a traceback only with --debug); 2 the command line itself is wrong;
130 interrupted.
"""

from __future__ import annotations

import gettext
import importlib
import inspect
import sys
import traceback
from collections.abc import Iterator
from typing import cast

import click

from scelle import __version__
from scelle.cli.language import use_for_click
from scelle.cli.session import Session
from scelle.core.errors import ScelleError
from scelle.i18n import gettext_of, language, translate

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


COMMANDS: dict[str, tuple[str, ...]] = {
    "admin": ("scelle.cli.platform:admin",),
    "agents": ("scelle.cli.agents:agents",),
    "assistant": ("scelle.cli.assistant:assistant",),
    "decrypt": ("scelle.cli.crypt:decrypt",),
    "deposit": ("scelle.cli.deposits:deposit",),
    "deposits": ("scelle.cli.deposits:deposits",),
    "encrypt": ("scelle.cli.crypt:encrypt",),
    "keys": ("scelle.cli.keys:keys",),
    "login": ("scelle.cli.remote:login",),
    "logout": ("scelle.cli.remote:logout",),
    "open": ("scelle.cli.deposits:open_",),
    "proof": ("scelle.cli.proof:proof",),
    "receipts": ("scelle.cli.deposits:receipts",),
    "serve": ("scelle.cli.platform:serve",),
    "service-keys": ("scelle.cli.remote:service_keys",),
    "take-part": ("scelle.cli.deposits:take_part",),
    "tenders": ("scelle.cli.remote:tenders", "scelle.cli.deposits:tender_deposits"),
    "witness": ("scelle.cli.witness:witness",),
}
"""Each command, where it is written, then the subcommands added to it from elsewhere.
A command's module loads only when it runs (or shows its own help): `scelle --help`
lists them from their help texts (cli/help_texts.py), without the libraries they use."""


def _load(path: str) -> click.Command:
    module, name = path.split(":")
    command = getattr(importlib.import_module(module), name)
    if not isinstance(command, click.Command):
        raise TypeError(f"{path} is not a command")
    return command


class LazyGroup(click.Group):
    """A group whose commands load when first asked for (click's documented pattern)."""

    language = "en"
    """The language of the run: each command is translated as it loads."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            command, *subcommands = (_load(path) for path in COMMANDS[cmd_name])
            for sub in subcommands:
                cast("click.Group", command).add_command(sub)
            self.add_command(command, cmd_name)
            _translate_help(command, self.language)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The list of commands, from their help texts: nothing is loaded to show it."""
        from scelle.cli.help_texts import COMMAND_HELP

        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [
            (name, click.Command(name, help=translate(self.language, COMMAND_HELP[name]))
             .get_short_help_str(limit))
            for name in names
        ]  # fmt: skip
        with formatter.section(gettext.gettext("Commands")):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


def all_commands() -> click.Group:
    """The whole command, every command loaded (for its help texts and the tests)."""
    context = click.Context(cli)
    for name in cli.list_commands(context):
        cli.get_command(context, name)
    return cli


def help_texts(command: click.Command) -> Iterator[str]:
    """Every help text of `command` and below, as written (the catalogue's msgids:
    scripts/help-texts lists them for makemessages); `all_commands()` for all of them."""
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


def run(args: list[str] | None = None, session: Session | None = None) -> int:
    """Run the command line and return its exit status."""
    debug = "--debug" in (args if args is not None else sys.argv[1:])
    lang = language()
    use_for_click(lang)
    cli.language = lang
    _translate_help(cli, lang)
    session = session or Session()
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
    finally:
        session.close()
    return EXIT_OK


def main() -> None:
    sys.exit(run())
