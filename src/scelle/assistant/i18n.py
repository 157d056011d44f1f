"""French and English for the command, from the platform's gettext catalogue.

One catalogue (src/scelle/locale/<lang>/LC_MESSAGES/django.po, compiled by
scripts/translations) serves the pages and the command. Messages are written in
English in the code, with `{name}` placeholders filled after translation. The
language comes from `SCELLE_LANG`, else the usual locale variables; French when
they start with "fr", English otherwise.
"""

from __future__ import annotations

import gettext
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path

LOCALE = Path(__file__).resolve().parent.parent / "locale"


def language() -> str:
    """Read at each message (no cache): a setting changed in the process applies at once."""
    for variable in ("SCELLE_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable)
        if value:
            return "fr" if value.lower().startswith("fr") else "en"
    return "en"


@cache
def _catalogue(lang: str) -> gettext.NullTranslations:
    return gettext.translation("django", localedir=LOCALE, languages=[lang], fallback=True)


def use_for_click(lang: str) -> None:
    """Make the standard gettext, which click reads, answer from this catalogue in `lang`."""
    gettext.bindtextdomain("django", LOCALE)
    gettext.textdomain("django")
    os.environ["LANGUAGE"] = lang


def gettext_noop(message: str) -> str:
    """Marks `message` for the catalogue, translated later (`translate`)."""
    return message


# click asks the standard gettext for its own words ("Usage:", "Options"…): the command
# points that at this catalogue (cli.main), which lists them below.
CLICK_WORDS = (
    gettext_noop("Usage:"),
    gettext_noop("Options"),
    gettext_noop("Commands"),
    gettext_noop("Show this message and exit."),
    gettext_noop("required"),
    gettext_noop("default: {default}"),
    gettext_noop("Error: {message}"),
    gettext_noop("Try '{command} {option}' for help."),
    gettext_noop("No such option {name!r}."),
    gettext_noop("No such command {name!r}."),
    gettext_noop("Missing option"),
    gettext_noop("Missing argument"),
    gettext_noop("Missing parameter"),
    gettext_noop("Invalid value for {param_hint}: {message}"),
    gettext_noop("Invalid value: {message}"),
    gettext_noop("Aborted!"),
)


def gettext_of(lang: str) -> Callable[[str], str]:
    """The catalogue's gettext for `lang`: what `ScelleError.diagnostics` takes."""
    return _catalogue(lang).gettext


def translate(lang: str, message: str, /, **values: object) -> str:
    """`message` in `lang` ("fr" or "en"), with `values` filled in."""
    text = _catalogue(lang).gettext(message)
    return text.format(**values) if values else text


def _(message: str, /, **values: object) -> str:
    """`message` in the user's language, with `values` filled in."""
    return translate(language(), message, **values)
