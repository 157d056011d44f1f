"""What every page view shares: who may see it, and how a refused action is shown.

Views are thin (STYLE.md): parse a form, call one service function with the
actor and the time, present. A `ScelleError` from the service becomes a message
on the page; "not found" and "forbidden" become the 404 and 403 pages, as the
API answers 404 and 403.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.template.defaultfilters import filesizeformat
from django.utils import formats, timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, gettext

from scelle.core.errors import NotFoundError, PermissionDeniedError, ScelleError
from scelle.platform.accounts.models import User

_T = TypeVar("_T")

PAGE_TOKENS_KEY = "scelle_page_tokens"
"""Prefixes of the API tokens a session's pages were given; logging out revokes them."""
_View = Callable[..., HttpResponseBase]

PER_PAGE = 50
"""Rows of a long list shown at once: a page costs the same with 50 rows or 50,000."""


def actor(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _page_for(agents: bool) -> Callable[[_View], _View]:
    def decorate(view: _View) -> _View:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:  # noqa: ANN401
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if actor(request).is_agent != agents:
                raise PermissionDenied
            try:
                return view(request, *args, **kwargs)
            except NotFoundError:
                raise Http404 from None
            except PermissionDeniedError:
                raise PermissionDenied from None

        return wrapped

    return decorate


agent_page = _page_for(agents=True)
"""A page of the buyers' side: a logged-in agent, else the login page or 403."""
company_page = _page_for(agents=False)
"""A page of the companies' side."""


def attempt(request: HttpRequest, action: Callable[[], _T]) -> _T | None:
    """Run one service call; a refusal of the rules becomes an error message shown on the
    page (the caller renders the form again) and None."""
    try:
        return action()
    except (NotFoundError, PermissionDeniedError):
        raise
    except ScelleError as error:
        message, hint = error.localized(gettext)
        message = message[:1].upper() + message[1:]  # a sentence on a page; terse in a terminal
        # Hints naming a command are for the terminal; the page says what to do itself.
        messages.error(request, f"{message}\n{hint}" if hint and "`" not in hint else message)
        return None


def shown_time(moment: dt.datetime, shape: str = "DATETIME_FORMAT") -> str:
    """A moment as the pages show it (the `date:"DATETIME_FORMAT"` filter, in the
    platform's time zone, or `shape`), for rows written in Python."""
    return _shown(moment, shape, get_language(), timezone.get_current_timezone())


@functools.lru_cache(maxsize=8192)
def _shown(moment: dt.datetime, shape: str, _language: str, zone: dt.tzinfo) -> str:
    """Django's date formatting (about 60 µs a moment, a long list's rows shows a hundred),
    remembered: the registers show the same moments again and again."""
    return str(formats.date_format(timezone.localtime(moment, zone), shape))


class Cell(NamedTuple):
    """A table cell with a class (`table_rows`)."""

    css: str
    content: str


def table_rows(rows: Iterable[Iterable[str | Cell]]) -> SafeString:
    """The rows of a table as HTML, for the long lists whose rows are written in Python
    (several times cheaper than the template language's loop over model instances): each
    cell is escaped unless it is already safe (escaped piece by piece by its writer); a
    `Cell` gives its cell a class."""
    written = []
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, Cell):
                cells.append(f'<td class="{_escaped(cell.css)}">{_escaped(cell.content)}</td>')
            else:
                cells.append(f"<td>{_escaped(cell)}</td>")
        written.append(f"<tr>{''.join(cells)}</tr>")
    return mark_safe("".join(written))  # noqa: S308 - every cell is escaped or safe


def _escaped(text: str) -> str:
    """`conditional_escape` without its lazy-string wrapping (a list's hundreds of cells):
    the same characters escaped, what is already safe kept."""
    if hasattr(text, "__html__"):
        return str(text.__html__())
    return html.escape(text)


def envelope_size(kind: str, size: int) -> str:
    """`kind (12.3 MB)`, escaped, as the registers show an envelope."""
    return f"{html.escape(kind)} ({shown_size(size)})"


def shown_size(size: int) -> str:
    """A size as the pages show it (the `filesizeformat` filter), escaped."""
    return _shown_size(size, get_language())


@functools.lru_cache(maxsize=8192)
def _shown_size(size: int, _language: str) -> str:
    """Django's size formatting (translated, localised: about 40 µs), remembered as
    `_shown` is."""
    return html.escape(str(filesizeformat(size)))
