"""Template filters of the pages."""

from __future__ import annotations

from django import template
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

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
