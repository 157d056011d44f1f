"""Template filters of the pages."""

from __future__ import annotations

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from scelle.core.errors import fill_plain
from scelle.platform.assistants.models import Job

register = template.Library()

HEX_GROUP = 8
"""Characters of a bare hexadecimal digest between two places it may wrap."""


@register.filter
def breakable(value: str) -> SafeString:
    """A fingerprint that wraps between its bytes, never inside one: after each colon of
    "AB:CD:…", or every 8 characters of a bare hex digest (<wbr> adds no character to
    what is copied)."""
    # escape() and str.join, not format_html_join: a page shows dozens of these, and
    # format_html per byte was half of the key page's time.
    text = str(value)
    if ":" in text:
        return mark_safe(escape(text).replace(":", ":<wbr>"))  # noqa: S308 - escaped
    groups = (escape(text[i : i + HEX_GROUP]) for i in range(0, len(text), HEX_GROUP))
    return mark_safe("<wbr>".join(groups))  # noqa: S308 - each group escaped


@register.filter
def said(job: Job) -> str:
    """A job's message in the page's language (`spoken`)."""
    return spoken(job.result, job.message)


def spoken(result: object, message: str) -> str:
    """A job's message in the page's language, from its result and message: the English
    template its assistant sent, translated here and filled with its values (plain names
    only); else the message as the assistant wrote it."""
    spoken = result.get("said") if isinstance(result, dict) else None
    if (
        isinstance(spoken, dict)
        and isinstance(spoken.get("template"), str)
        and isinstance(spoken.get("values"), dict)
    ):
        filled = fill_plain(gettext(spoken["template"]), spoken["values"])
        if filled is not None:
            return filled
    return gettext(message)
