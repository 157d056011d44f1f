"""Messages as templates: filled where they are shown, in the reader's language."""

from __future__ import annotations

import pytest

from scelle.core.errors import fill_plain


def test_a_template_from_elsewhere_is_filled_with_plain_names_only() -> None:
    assert fill_plain("{reference}: {opened} opened", {"reference": "AO-1", "opened": 2}) == (
        "AO-1: 2 opened"
    )
    assert fill_plain("{size:.2f} GiB, {name!r}", {"size": 1.5, "name": "x"}) == "1.50 GiB, 'x'"


@pytest.mark.parametrize(
    "template",
    [
        "{reference.__class__}",  # an attribute
        "{reference[0]}",  # an index
        "{missing}",  # a name not given
        "{0}",  # a position
        "{reference:>{width}}",  # a nested field
        "{reference!s:1000000}",  # a conversion and a padding no message needs
        "{unclosed",
    ],
)
def test_anything_more_than_a_plain_name_is_refused(template: str) -> None:
    assert fill_plain(template, {"reference": "AO-1", "width": 9}) is None


def test_only_texts_and_numbers_fill_a_template() -> None:
    assert fill_plain("{value}", {"value": ["a list"]}) is None
    # A number's format given a text: not filled, and no exception for the page to turn
    # into a server error.
    assert fill_plain("{size:.2f} GiB", {"size": "beaucoup"}) is None
