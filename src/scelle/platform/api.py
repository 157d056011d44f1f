"""The JSON API: authentication, error handlers, and every app's router registered.

Routes are thin: parse, call one service function with the actor and the
time, present. The rules live in the services.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.security import HttpBearer

from scelle import __version__
from scelle.core.errors import ScelleError, TooManyAttemptsError
from scelle.platform.accounts.models import User
from scelle.platform.accounts.services import token_for
from scelle.platform.answers import error_answer, error_body, status_for
from scelle.platform.clock import now
from scelle.platform.deposits.tus import OPENAPI_PATHS


class TokenAuth(HttpBearer):
    """`Authorization: Bearer scl_…`: a live token of an active user."""

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        found = token_for(token, now=now())
        if found is None:
            return None
        request.api_token = found  # type: ignore[attr-defined]
        return found.user


class ScelleAPI(NinjaAPI):
    """The API, whose OpenAPI document also describes the tus upload routes (plain views)."""

    def __init__(self, **options: Any) -> None:  # noqa: ANN401 (NinjaAPI's own)
        super().__init__(**options)
        self._schemas: dict[str | None, OpenAPISchema] = {}

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        """Built once per process: /api/openapi.json needs no login, and building the
        document took 70 ms of CPU, which 1,000 anonymous connections asked for at once."""
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        schema = self._schemas.get(path_prefix)
        if schema is None:
            schema = super().get_openapi_schema(path_prefix=path_prefix)
            schema["paths"].update(OPENAPI_PATHS)
            self._schemas[path_prefix] = schema
        return schema


api = ScelleAPI(
    title="Scellé",
    version=__version__,
    description=(
        "Sealed bids for public procurement: buyers' key registry, tenders and their "
        "definitive key pairs. Every route but /health, /auth/login and /platform/ca "
        "needs `Authorization: Bearer <token>` from /auth/login."
    ),
    auth=TokenAuth(),
    urls_namespace="api",
)


@api.exception_handler(ScelleError)
def _scelle_error(request: HttpRequest, error: ScelleError) -> HttpResponse:
    status = status_for(error)
    response = api.create_response(request, error_answer(error), status=status)
    if isinstance(error, TooManyAttemptsError) and error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    return response


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return api.create_response(
        request,
        error_body("log in first: this needs a valid token", "Run `scelle login URL`."),
        status=401,
    )


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, error: ValidationError) -> HttpResponse:
    first = error.errors[0] if error.errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "payload"))
    message = f"{where}: {first.get('msg', 'invalid')}" if where else "the request is invalid"
    return api.create_response(request, {**error_body(message), "errors": error.errors}, status=422)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    return api.create_response(request, error_body(str(error)), status=error.status_code)


def _register() -> None:
    from scelle.platform.accounts.api import router as accounts
    from scelle.platform.assistants.api import router as assistants
    from scelle.platform.deposits.api import router as deposits
    from scelle.platform.keypairs.api import router as keypairs
    from scelle.platform.opening.api import router as opening
    from scelle.platform.tenders.api import router as tenders

    api.add_router("", accounts)
    api.add_router("/key-pairs", keypairs)
    api.add_router("/tenders", tenders)
    api.add_router("", deposits)
    api.add_router("", opening)
    api.add_router("/assistant", assistants)


_register()
