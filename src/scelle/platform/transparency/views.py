"""The transparency log over HTTP, as c2sp.org/tlog-tiles serves it under /log/: the
checkpoint, the tiles and the entry bundles, readable by anyone; plus where witnesses
send their cosignatures and where the latest of each is read."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from scelle.core import tlog
from scelle.core.errors import ScelleError
from scelle.platform.transparency import services

IMMUTABLE = "public, max-age=31536000, immutable"
MAX_COSIGNED_BYTES = 1 << 16


def _text(body: str, *, cache: str = "no-cache") -> HttpResponse:
    response = HttpResponse(body, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = cache
    return response


def _not_found(what: str) -> HttpResponse:
    response = _text(f"{what}\n")
    response.status_code = 404
    return response


@require_GET
def checkpoint(request: HttpRequest) -> HttpResponse:
    found = services.checkpoint_note()
    if found is None:
        return _not_found("the log has no entry yet")
    return _text(found)


@require_GET
def key(request: HttpRequest) -> HttpResponse:
    """The log's verifier key (c2sp.org/signed-note), for witnesses and monitors."""
    return _text(services.log_key() + "\n", cache="public, max-age=3600")


@require_GET
def tile(request: HttpRequest, path: str) -> HttpResponse:
    parsed = tlog.parse_tile_path(f"tile/{path}")
    if parsed is None:
        return _not_found("no such tile")
    level, index, width = parsed
    data = (
        services.entry_bundle(index, width) if level is None else services.tile(level, index, width)
    )
    if data is None:
        return _not_found("no such tile")
    response = HttpResponse(data, content_type="application/octet-stream")
    response["Cache-Control"] = IMMUTABLE
    return response


@require_GET
def witnessed(request: HttpRequest) -> HttpResponse:
    """{witness name: the latest checkpoint it cosigned}, for clients that require some."""
    return JsonResponse({"witnessed": services.witnessed()}, json_dumps_params={"indent": 2})


@csrf_exempt  # no session: a cosignature stands on its signature alone
@require_POST
def cosignature(request: HttpRequest) -> HttpResponse:
    body = request.body
    if len(body) > MAX_COSIGNED_BYTES:
        return JsonResponse({"detail": "too large"}, status=413)
    try:
        kept = services.add_cosignatures(body, now=timezone.now())
    except ScelleError as error:
        return JsonResponse({"detail": error.message}, status=400)
    return HttpResponse(json.dumps({"kept": kept}), content_type="application/json", status=201)
