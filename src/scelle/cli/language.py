"""The command's own words through click: click asks the standard gettext for "Usage:",
"Options"…; the command points that at Scellé's catalogue, which lists them here."""

from __future__ import annotations

import gettext
import os

from scelle.i18n import LOCALE, gettext_noop


def use_for_click(lang: str) -> None:
    """Make the standard gettext, which click reads, answer from this catalogue in `lang`."""
    gettext.bindtextdomain("django", LOCALE)
    gettext.textdomain("django")
    os.environ["LANGUAGE"] = lang


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
