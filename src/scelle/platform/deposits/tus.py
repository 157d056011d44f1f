"""Resumable uploads, tus 1.0.0 (https://tus.io/protocols/resumable-upload):
core, creation, checksum and termination, under /api/uploads/.

    POST   /api/uploads/       Upload-Length, Upload-Metadata "tender <b64>,envelope <b64>"
    HEAD   /api/uploads/<id>   → Upload-Offset, Upload-Length
    PATCH  /api/uploads/<id>   Upload-Offset, application/offset+octet-stream,
                               Content-Length, optional Upload-Checksum "sha256 <b64>"
    DELETE /api/uploads/<id>   abandon

Every request carries `Authorization: Bearer <token>` as the JSON API does.
The body of a PATCH streams to disk piece by piece: never the whole chunk in
memory. Errors answer with the API's JSON error body and status.

Under `scelle serve` a PATCH never reaches the view below: the gateway
(scelle.platform.gateway) streams its body from the event loop, with the same
checks (`authenticated`, `byte_count`, `checksum_of`, `services.begin_append`).
The view serves any other WSGI server, and the tests' client.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from scelle.core.errors import N_, InvalidInputError, NotAuthenticatedError, ScelleError
from scelle.platform.accounts.models import User
from scelle.platform.accounts.services import token_for
from scelle.platform.answers import error_answer, error_body, status_for
from scelle.platform.clock import now
from scelle.platform.deposits import services

VERSION = "1.0.0"
EXTENSIONS = "creation,checksum,termination"
CHECKSUMS = {"sha1": "sha1", "sha256": "sha256"}


def authenticated(headers: Mapping[str, str]) -> User:
    """The user of a live token in `Authorization: Bearer …`."""
    header = headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    token = token_for(value.strip(), now=now()) if scheme.lower() == "bearer" else None
    if token is None:
        raise NotAuthenticatedError(
            N_("log in first: this needs a valid token"), hint=N_("Run `scelle login URL`.")
        )
    return token.user


def _tus(response: HttpResponse) -> HttpResponse:
    response["Tus-Resumable"] = VERSION
    response["Cache-Control"] = "no-store"
    return response


_COUNT = re.compile(r"[0-9]{1,15}")


def byte_count(headers: Mapping[str, str], header: str) -> int:
    """A byte count: ASCII digits only (str.isdigit also takes "²"), bounded."""
    value = headers.get(header)
    if value is None or not _COUNT.fullmatch(value):
        raise InvalidInputError(
            N_("the {header} header must be a whole number of bytes"), header=header
        )
    return int(value)


MAX_METADATA = 1000


def _metadata(request: HttpRequest) -> dict[str, str]:
    header = request.headers.get("Upload-Metadata", "")
    if len(header) > MAX_METADATA:
        raise InvalidInputError(
            N_("Upload-Metadata holds at most {most} characters"), most=MAX_METADATA
        )
    found: dict[str, str] = {}
    for pair in header.split(","):
        key, _, encoded = pair.strip().partition(" ")
        if not key:
            continue
        try:
            found[key] = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidInputError(
                N_("Upload-Metadata: {key} is not base64 UTF-8"), key=key[:40]
            ) from None
    return found


def checksum_of(headers: Mapping[str, str]) -> tuple[str, bytes] | None:
    """(algorithm, digest) of `Upload-Checksum`, if the request has one."""
    header = headers.get("Upload-Checksum")
    if header is None:
        return None
    name, _, encoded = header.strip().partition(" ")
    if name not in CHECKSUMS:
        raise InvalidInputError(
            N_("unsupported checksum algorithm {name!r}: use sha1 or sha256"), name=name[:40]
        )
    try:
        return CHECKSUMS[name], base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise InvalidInputError(N_("Upload-Checksum is not base64")) from None


def _handled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    def wrapper(request: HttpRequest, **kwargs: str) -> HttpResponse:
        if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != VERSION:
            response = JsonResponse(error_body(f"this server speaks tus {VERSION}"), status=412)
            response["Tus-Version"] = VERSION
            return _tus(response)
        try:
            return _tus(view(request, **kwargs))
        except ScelleError as error:
            return _tus(JsonResponse(error_answer(error), status=status_for(error)))

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return csrf_exempt(wrapper)


@_handled
def uploads(request: HttpRequest) -> HttpResponse:
    """OPTIONS: what this server supports. POST: create an upload."""
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        response["Tus-Version"] = VERSION
        response["Tus-Extension"] = EXTENSIONS
        response["Tus-Checksum-Algorithm"] = ",".join(CHECKSUMS)
        response["Tus-Max-Size"] = str(settings.SCELLE_MAX_DEPOSIT_BYTES)
        return response
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "OPTIONS, POST"})
    user = authenticated(request.headers)
    metadata = _metadata(request)
    if not metadata.get("tender") or not metadata.get("envelope"):
        raise InvalidInputError(
            N_(
                "Upload-Metadata names the tender and the envelope: "
                "tender <base64>,envelope <base64>"
            )
        )
    upload = services.create_upload(
        user,
        reference=metadata["tender"],
        envelope=metadata["envelope"],
        length=byte_count(request.headers, "Upload-Length"),
        now=now(),
    )
    response = HttpResponse(status=201)
    response["Location"] = request.build_absolute_uri(f"/api/uploads/{upload.id}")
    response["Upload-Offset"] = "0"
    return response


@_handled
def upload(request: HttpRequest, upload_id: str) -> HttpResponse:
    """HEAD: where the upload stands. PATCH: append. DELETE: abandon."""
    user = authenticated(request.headers)
    if request.method == "HEAD":
        held, length = services.upload_offset(user, upload_id)
        response = HttpResponse(status=200)
        response["Upload-Offset"] = str(held)
        response["Upload-Length"] = str(length)
        return response
    if request.method == "PATCH":
        if request.content_type != "application/offset+octet-stream":
            return HttpResponse(status=415)
        held = services.append_to_upload(
            user,
            upload_id,
            offset=byte_count(request.headers, "Upload-Offset"),
            body=request,
            count=byte_count(request.headers, "Content-Length"),
            checksum=checksum_of(request.headers),
        )
        response = HttpResponse(status=204)
        response["Upload-Offset"] = str(held)
        return response
    if request.method == "DELETE":
        services.terminate_upload(user, upload_id, now=now())
        return HttpResponse(status=204)
    return HttpResponse(status=405, headers={"Allow": "HEAD, PATCH, DELETE"})


# --- the OpenAPI description of the routes above (merged into /api/openapi.json) ------

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
_COUNT_SCHEMA = {"type": "string", "pattern": "^[0-9]{1,15}$"}


def _header(name: str, description: str, schema: dict[str, Any], *, required: bool = True) -> (
    dict[str, Any]
):  # fmt: skip
    return {
        "in": "header", "name": name, "required": required, "description": description,
        "schema": schema,
    }  # fmt: skip


def _responses(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    described = {str(status): {"description": "An error", "content": _ERROR} for status in errors}
    return {**ok, **described}


_VERSION = _header(
    "Tus-Resumable", f"The tus version, {VERSION}; any other, or none, gets 412 as tus says",
    {"type": "string", "enum": [VERSION]},
)  # fmt: skip
_TOKEN: list[dict[str, list[str]]] = [{"TokenAuth": []}]
_UPLOAD_ID = {
    "in": "path", "name": "upload_id", "required": True, "schema": {"type": "string"},
    "description": "The upload's id, from the Location of its creation",
}  # fmt: skip
_OFFSET_OUT = {"Upload-Offset": {"schema": _COUNT_SCHEMA}}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/uploads/": {
        "options": {
            "operationId": "tus_options",
            "summary": "What this server supports (tus 1.0.0)",
            "tags": ["uploads"],
            "responses": {"204": {"description": "Tus-Version, Tus-Extension, Tus-Max-Size"}},
        },
        "post": {
            "operationId": "tus_create",
            "summary": "Create an upload for one envelope of a deposit (companies)",
            "tags": ["uploads"],
            "security": _TOKEN,
            "parameters": [
                _VERSION,
                _header("Upload-Length", "The envelope's size in bytes", _COUNT_SCHEMA),
                _header(
                    "Upload-Metadata",
                    "tender <base64 id or reference>,envelope <base64 kind>",
                    {"type": "string", "maxLength": MAX_METADATA},
                ),
            ],
            "responses": _responses(
                {
                    "201": {
                        "description": "Created",
                        "headers": {"Location": {"schema": {"type": "string"}}, **_OFFSET_OUT},
                    }
                },
                400,
                401,
                403,
                404,
                409,
                412,
                413,
                422,
            ),
        },
    },
    "/api/uploads/{upload_id}": {
        "head": {
            "operationId": "tus_offset",
            "summary": "Where an upload stands: the bytes the platform holds",
            "tags": ["uploads"],
            "security": _TOKEN,
            "parameters": [_UPLOAD_ID, _VERSION],
            "responses": {
                "200": {
                    "description": "Upload-Offset and Upload-Length",
                    "headers": {**_OFFSET_OUT, "Upload-Length": {"schema": _COUNT_SCHEMA}},
                },
                **{str(s): {"description": "An error"} for s in (400, 401, 403, 404, 412)},
            },
        },
        "patch": {
            "operationId": "tus_append",
            "summary": "Append a chunk at the offset the platform holds",
            "tags": ["uploads"],
            "security": _TOKEN,
            "parameters": [
                _UPLOAD_ID,
                _VERSION,
                _header("Upload-Offset", "Bytes the platform holds already", _COUNT_SCHEMA),
                _header(
                    "Upload-Checksum",
                    "sha1 or sha256, then the chunk's base64 digest",
                    {"type": "string", "maxLength": 200},
                    required=False,
                ),
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/offset+octet-stream": {
                        "schema": {"type": "string", "format": "binary"}
                    }
                },
            },
            "responses": _responses(
                {"204": {"description": "Stored", "headers": _OFFSET_OUT}},
                400,
                401,
                403,
                404,
                408,
                409,
                412,
                460,
                503,
            )
            | {"415": {"description": "Not application/offset+octet-stream"}},
        },
        "delete": {
            "operationId": "tus_terminate",
            "summary": "Abandon an upload: its bytes are removed",
            "tags": ["uploads"],
            "security": _TOKEN,
            "parameters": [_UPLOAD_ID, _VERSION],
            "responses": _responses(
                {"204": {"description": "Abandoned"}}, 400, 401, 403, 404, 409, 412
            ),
        },
    },
}
"""The tus routes in the API's OpenAPI document: Schemathesis and client authors see them."""
