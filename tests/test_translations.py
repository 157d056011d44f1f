"""The French catalogue is complete: every message of the pages, the platform's code and the
command is in locale/fr, translated, not fuzzy, and compiled (scripts/translations)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_python
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from django.utils.translation.template import templatize

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "scelle"
PO = PACKAGE / "locale" / "fr" / "LC_MESSAGES" / "django.po"
KEYWORDS = {**DEFAULT_KEYWORDS, "gettext_lazy": None, "gettext_noop": None, "ngettext_lazy": (1, 2)}


def _extract(source: str) -> set[object]:
    found: set[object] = set()
    for _line, _function, message, _comments in extract_python(
        io.BytesIO(source.encode()), KEYWORDS, [], {}
    ):
        if isinstance(message, tuple):
            parts = tuple(part for part in message if part)
            if parts:
                found.add(parts if len(parts) > 1 else parts[0])
        elif message:
            found.add(str(message))
    return found


# Python 3.11 tokenizes an f-string as one string: `_()` calls inside one (the assistant's
# window builds its HTML so) are invisible to Babel, so they are found by this pattern too.
_CALL = re.compile(r"""\b_\(\s*(?:"((?:[^"\\]|\\.)+)"|'((?:[^'\\]|\\.)+)')\s*[,)]""")


def _messages_of_the_code() -> set[object]:
    found: set[object] = set()
    for template in (PACKAGE / "platform").rglob("templates/**/*.html"):
        # templatize keeps the template's indentation, which Python's tokenizer refuses.
        python = templatize(template.read_text("utf-8"), origin=str(template))
        found |= _extract("\n".join(line.lstrip() for line in python.splitlines()))
    for module in [
        *(PACKAGE / "platform").rglob("*.py"),
        *(PACKAGE / "cli").glob("*.py"),
        *(PACKAGE / "assistant").glob("*.py"),
        *(PACKAGE / "keystore").glob("*.py"),
    ]:
        if "migrations" not in module.parts:
            source = module.read_text("utf-8")
            found |= _extract(source)
            found |= {a or b for a, b in _CALL.findall(source)}
    return found


def _key(value: object) -> object:
    return tuple(value) if isinstance(value, list | tuple) else value


def _catalogue() -> dict[object, object]:
    with PO.open("rb") as source:
        catalog = read_po(source, locale="fr")
    return {message.id: message for message in catalog if message.id}


def test_every_message_of_the_pages_has_its_french() -> None:
    catalogue = _catalogue()
    wanted = _messages_of_the_code()
    assert len(wanted) > 250  # the extraction itself works
    missing = sorted(str(message) for message in wanted if message not in catalogue)
    assert missing == [], "run makemessages, translate, then scripts/translations"
    untranslated = [
        str(key)
        for key, message in catalogue.items()
        if not all(getattr(message, "string", None) or [None])
        or "fuzzy" in getattr(message, "flags", ())
    ]
    assert untranslated == []


def test_the_compiled_catalogue_is_the_source() -> None:
    with PO.with_suffix(".mo").open("rb") as compiled:
        mo = {_key(m.id): _key(m.string) for m in read_mo(compiled) if m.id}
    po = {_key(key): _key(getattr(message, "string")) for key, message in _catalogue().items()}  # noqa: B009
    assert mo == po, "run scripts/translations"


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.django_db
def test_a_page_speaks_the_browsers_language(language: str) -> None:
    from django.test import Client

    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    page = client.get("/connexion/", secure=True).content.decode()
    assert ("Adresse électronique" in page) == (language == "fr")
    assert ("E-mail address" in page) == (language == "en")


def test_the_help_texts_are_listed_for_the_catalogue() -> None:
    """scripts/help-texts keeps src/scelle/cli/help_texts.py current (makemessages reads it)."""
    from scelle.cli.help_texts import COMMAND_HELP, HELP_TEXTS
    from scelle.cli.main import all_commands, help_texts

    cli = all_commands()
    assert set(help_texts(cli)) == set(HELP_TEXTS), "run scripts/help-texts"
    helps = {name: command.help for name, command in cli.commands.items()}
    assert helps == COMMAND_HELP, "run scripts/help-texts"


_PLACEHOLDER = re.compile(r"%\([a-z_0-9]+\)[sdr]|\{[a-z_0-9]+(?:![rsa])?(?::[^}]*)?\}")


def test_translations_keep_every_placeholder() -> None:
    wrong = []
    for key, message in _catalogue().items():
        ids = key if isinstance(key, tuple) else (key,)
        strings = getattr(message, "string", "")
        strings = strings if isinstance(strings, tuple | list) else (strings,)
        wanted = sorted(_PLACEHOLDER.findall(ids[-1]))
        for string in strings:
            if sorted(_PLACEHOLDER.findall(string)) != wanted:
                wrong.append(f"{ids[-1]!r} → {string!r}")
    assert wrong == []
