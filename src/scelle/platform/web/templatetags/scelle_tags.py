"""Template filters of the pages."""

from __future__ import annotations

from django import template
from django.utils.html import format_html_join
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
    text = str(value)
    if ":" in text:
        parts = text.split(":")
        return format_html_join(mark_safe(":<wbr>"), "{}", ((part,) for part in parts))
    groups = [text[i : i + HEX_GROUP] for i in range(0, len(text), HEX_GROUP)]
    return format_html_join(mark_safe("<wbr>"), "{}", ((group,) for group in groups))


@register.filter
def said(job: Job) -> str:
    """A job's message in the page's language: the English template its assistant sent,
    translated here and filled with its values (plain names only); else the message as
    the assistant wrote it."""
    spoken = job.result.get("said") if isinstance(job.result, dict) else None
    if (
        isinstance(spoken, dict)
        and isinstance(spoken.get("template"), str)
        and isinstance(spoken.get("values"), dict)
    ):
        filled = fill_plain(gettext(spoken["template"]), spoken["values"])
        if filled is not None:
            return filled
    return gettext(job.message)
