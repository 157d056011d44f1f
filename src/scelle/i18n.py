"""French and English for the command and the assistant's window, from the platform's
gettext catalogue (the pages read the same one through Django).

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

LOCALE = Path(__file__).resolve().parent / "locale"


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


def gettext_noop(message: str) -> str:
    """Marks `message` for the catalogue, translated later (`translate`)."""
    return message


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
