"""How the platform answers, for the API, the upload routes, the gateway and the pages
alike: the one error-to-status mapping, error bodies, and who is asking."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.translation import gettext

from scelle.core.errors import (
    ChecksumMismatchError,
    NotAuthenticatedError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
    ScelleError,
    TooLargeError,
    TooManyAttemptsError,
)
from scelle.platform.accounts.models import ApiToken, User

# The only place where an error becomes an HTTP status. Anything else that
# is a ScelleError is the caller's input: 400.
_STATUS: tuple[tuple[type[ScelleError], int], ...] = (
    (ChecksumMismatchError, 460),  # tus checksum extension
    (NotAuthenticatedError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (TooLargeError, 413),  # before RuleViolationError, its parent
    (RuleViolationError, 409),
    (TooManyAttemptsError, 429),
)


def status_for(error: ScelleError) -> int:
    """The HTTP status of an error, for the API and the upload routes alike."""
    return next((code for kind, code in _STATUS if isinstance(error, kind)), 400)


def error_body(message: str, hint: str | None = None) -> dict[str, str | None]:
    return {"detail": message, "hint": hint}


BUSY_SECONDS = 5
"""What a busy platform's 503 says to wait (Retry-After)."""


def busy_body() -> dict[str, str | None]:
    """The body of a 503, in the active language: nothing was done, come back soon."""
    return error_body(
        gettext("the platform is busy; try again in a moment"),
        gettext("Nothing was done: send the same request again in a few seconds."),
    )


def error_answer(error: ScelleError) -> dict[str, str | None]:
    """The body of an error's answer, in the language the request asked for."""
    message, hint = error.localized(gettext)
    return error_body(message, hint)


def current_token(request: HttpRequest) -> ApiToken:
    return request.api_token  # type: ignore[attr-defined, no-any-return]


def actor(request: HttpRequest) -> User:
    return request.auth  # type: ignore[attr-defined, no-any-return]
