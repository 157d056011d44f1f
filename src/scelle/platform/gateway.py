"""The platform's front door: the ASGI application `scelle serve` runs under hypercorn.

On a deadline's last hour a thousand companies on slow office uplinks may be
connected at once, and some may be hostile. A server that gives each
connection a thread while its request arrives (cheroot, before) stops
answering as soon as a few connections send slowly or nothing at all. Here
the event loop holds the connections and reads what arrives; a thread works
only on a request that has fully arrived:

- a tus PATCH (`/api/uploads/<id>`) is checked in the thread pool (token,
  upload, offset), then its body streams from the event loop straight into the
  upload's file (`storage.Appender`): a chunk sent at 64 KiB/s holds no thread;
- every other request's body, at most `BODY_LIMIT` bytes, is read by the event
  loop first; then Django answers it in a pool of `threads` threads (a2wsgi),
  each keeping its database connection between requests;
- a body that brings fewer than `MINIMUM_BYTES` in any `WINDOW` seconds is cut
  off (the bytes of a PATCH are kept, as tus wants, and the company resumes);
- a connection that sends no complete request head within hypercorn's
  keep-alive timeout is closed (`server.KEEP_ALIVE_SECONDS`);
- an assistant's long poll for jobs (`GET /api/assistant/jobs/next?wait=N`) is
  asked of Django once a second until a job comes or `N` seconds pass: waiting
  for work holds no thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, MutableMapping
from typing import Any, TypeVar, cast

from a2wsgi import WSGIMiddleware
from django.core.handlers.wsgi import WSGIHandler
from django.db import DatabaseError, close_old_connections
from django.http import HttpRequest
from django.utils import translation
from django.utils.datastructures import CaseInsensitiveMapping

from scelle.core.errors import ScelleError
from scelle.platform.api import error_answer, error_body, status_for
from scelle.platform.deposits import services, storage, tus

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
_T = TypeVar("_T")

BODY_LIMIT = 1 << 20
"""The largest body of a request other than a tus PATCH (the JSON API's are small)."""
WINDOW = 30.0
"""Seconds over which a body's progress is judged."""
MINIMUM_BYTES = 32 << 10
"""Bytes a body must bring in each window (about 1 KiB/s), unless it is complete."""

POLL_EVERY = 1.0
"""Seconds between two looks for an assistant's next job during its long poll."""

_UPLOAD = re.compile(r"/api/uploads/([^/]+)")
_LONG_POLL = "/api/assistant/jobs/next"
_WAIT = re.compile(rb"(?:^|&)wait=([0-9]{1,2})(?:&|$)")
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]
_log = logging.getLogger("scelle.platform")


class _TooSlow(Exception):
    """The body stopped arriving, or arrives slower than the platform waits for."""


class _Disconnected(Exception):
    """The client went away before its body was complete."""


class _TooLarge(Exception):
    """The body is longer than the platform takes for this route."""


class Gateway:
    """The ASGI application: tus PATCH bodies on the event loop, the rest to Django."""

    def __init__(self, wsgi_application: WSGIHandler, *, threads: int) -> None:
        # a2wsgi's types name each ASGI message; the gateway passes them through.
        self._django: Any = WSGIMiddleware(cast(Any, wsgi_application), workers=threads)
        self._pool = self._django.executor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets here: hypercorn closes the connection
        found = _UPLOAD.fullmatch(scope["path"])
        if found is not None and scope["method"] == "PATCH":
            await self._patch(scope, receive, send, found.group(1))
            return
        headers = _headers(scope)
        announced = headers.get("Content-Length", "")
        if announced.isascii() and announced.isdigit() and int(announced) > BODY_LIMIT:
            await _answer(send, 413, error_body("this request's body is too large"), unread=receive)
            return
        try:
            body = await _read_body(receive, BODY_LIMIT)
        except _Disconnected:
            return
        except _TooSlow:
            await _answer(send, 408, error_body("the request came too slowly"), unread=receive)
            return
        except _TooLarge:
            await _answer(send, 413, error_body("this request's body is too large"), unread=receive)
            return
        if scope["path"] == _LONG_POLL and scope["method"] == "GET":
            await self._long_poll(scope, send)
            return
        await self._django(scope, _replay(body, receive), send)

    async def _long_poll(self, scope: Scope, send: Send) -> None:
        """Ask Django for the next job until one comes (or an error), or `wait` ends."""
        found = _WAIT.search(scope.get("query_string", b""))
        wait = min(int(found.group(1)), 30) if found else 0
        loop = asyncio.get_running_loop()
        end = loop.time() + wait
        while True:
            answer: list[Message] = []

            async def keep(message: Message, answer: list[Message] = answer) -> None:
                answer.append(message)

            await self._django(scope, _replay(b"", _never), keep)
            status = answer[0].get("status") if answer else None
            if status != 204 or loop.time() + POLL_EVERY > end:
                for message in answer:
                    await send(message)
                return
            await asyncio.sleep(POLL_EVERY)

    async def _in_pool(self, function: Callable[[], _T]) -> _T:
        """Run `function` on a pool thread, as Django runs a request (fresh connections)."""

        def run() -> _T:
            close_old_connections()
            try:
                return function()
            finally:
                close_old_connections()

        return await asyncio.get_running_loop().run_in_executor(self._pool, run)

    async def _patch(self, scope: Scope, receive: Receive, send: Send, upload_id: str) -> None:
        """tus PATCH: the same checks and answers as `tus.upload`, the body on the loop."""
        headers = _headers(scope)
        tus_headers = [(b"tus-resumable", tus.VERSION.encode())]
        if headers.get("Tus-Resumable") != tus.VERSION:
            body = error_body(f"this server speaks tus {tus.VERSION}")
            await _answer(
                send, 412, body, [*tus_headers, (b"tus-version", b"1.0.0")], unread=receive
            )
            return
        if headers.get("Content-Type", "").split(";")[0].strip() != (
            "application/offset+octet-stream"
        ):
            await _answer(send, 415, None, tus_headers, unread=receive)
            return

        def begin() -> storage.Appender:
            translation.activate(_language(headers))  # as LocaleMiddleware does for Django
            return services.begin_append(
                tus.authenticated(headers),
                upload_id,
                offset=tus.byte_count(headers, "Upload-Offset"),
                count=tus.byte_count(headers, "Content-Length"),
                checksum=tus.checksum_of(headers),
            )

        try:
            appender = await self._in_pool(begin)
        except ScelleError as error:
            body = error_answer(error)
            await _answer(send, status_for(error), body, tus_headers, unread=receive)
            return
        except DatabaseError:
            _log.exception("could not look upload %s up", upload_id)
            body = error_body("the platform is busy; try again in a moment")
            busy = [*tus_headers, (b"retry-after", b"5")]
            await _answer(send, 503, body, busy, unread=receive)
            return
        stopped: Exception | None = None
        pieces = _body_pieces(receive)
        try:
            async for piece in pieces:
                appender.write(piece)
                if not appender.remaining:
                    break
        except (_TooSlow, _Disconnected) as error:
            stopped = error
        except OSError:
            appender.close()
            _log.exception("could not store a chunk of upload %s", upload_id)
            body = error_body("the platform could not store this chunk; try again later")
            await _answer(send, 503, body, tus_headers, unread=receive)
            return
        except BaseException:  # cancelled (the server stopping): the lock goes at once
            appender.close()
            raise
        finally:
            await pieces.aclose()
        # What arrived is kept (a checksummed chunk only whole): the company resumes
        # from the offset a HEAD gives.
        try:
            held = await asyncio.get_running_loop().run_in_executor(None, appender.finish)
        except ScelleError as error:
            if stopped is None:
                body = error_answer(error)
                await _answer(send, status_for(error), body, tus_headers, unread=receive)
                return
            held = None
        if isinstance(stopped, _Disconnected):
            return
        if isinstance(stopped, _TooSlow):
            body = error_body(
                "the chunk came too slowly: the platform keeps what arrived",
                "Ask for the upload's offset (HEAD) and resume from there.",
            )
            await _answer(send, 408, body, tus_headers, unread=receive)
            return
        await _answer(send, 204, None, [*tus_headers, (b"upload-offset", str(held).encode())])


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _language(headers: CaseInsensitiveMapping[str]) -> str:
    """The language the client asks for, as Django's LocaleMiddleware chooses it."""
    request = HttpRequest()
    request.META["HTTP_ACCEPT_LANGUAGE"] = headers.get("Accept-Language", "")
    return translation.get_language_from_request(request)


def _headers(scope: Scope) -> CaseInsensitiveMapping[str]:
    """The request's headers by name; a repeated header's values joined by ", "."""
    found: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        found[name] = f"{found[name]}, {value}" if name in found else value
    return CaseInsensitiveMapping(found)


async def _body_pieces(receive: Receive) -> AsyncGenerator[bytes, None]:
    """The body as it arrives; `_TooSlow` when a window brings less than `MINIMUM_BYTES`."""
    loop = asyncio.get_running_loop()
    window_end = loop.time() + WINDOW
    in_window = 0
    while True:
        message: Message | None
        try:
            async with asyncio.timeout_at(window_end):
                message = await receive()
        except TimeoutError:  # hypercorn's receive is a queue: cancelling it loses nothing
            message = None
        if message is not None:
            if message["type"] == "http.disconnect":
                raise _Disconnected
            piece = message.get("body", b"")
            if piece:
                yield piece
            if not message.get("more_body", False):
                return
            in_window += len(piece)
        if loop.time() >= window_end:
            if in_window < MINIMUM_BYTES:
                raise _TooSlow
            window_end, in_window = loop.time() + WINDOW, 0


async def _read_body(receive: Receive, limit: int) -> bytes:
    body = bytearray()
    async for piece in _body_pieces(receive):
        body += piece
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


async def _never() -> Message:
    """A `receive` with nothing more: each look of a long poll is a request of its own."""
    await asyncio.Event().wait()
    return {"type": "http.disconnect"}


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body already read, then whatever comes next."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _answer(
    send: Send,
    status: int,
    body: dict[str, Any] | None,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    unread: Receive | None = None,
) -> None:
    """An answer of the gateway's own, with the API's JSON error body when there is one.

    `unread`: the request's `receive`, when its body was not all read. The answer then
    closes the connection (the rest of the body would be taken for the next request),
    and what the company still sends is read away while the answer goes: hypercorn
    ends a request by queueing a last message for the application, and with that queue
    full of body the answer never finished nor the connection closed, while a browser,
    which reads no answer before its body is sent, waited for ever too.
    """
    content = b"" if body is None else json.dumps(body).encode()
    extra = list(headers or ())
    if body is not None:
        extra.append((b"content-type", b"application/json"))
    if unread is not None:
        extra.append((b"connection", b"close"))
    if status != 204:
        extra.append((b"content-length", str(len(content)).encode()))
    draining = None if unread is None else asyncio.create_task(_read_away(unread))
    try:
        await send(
            {"type": "http.response.start", "status": status, "headers": _SECURITY_HEADERS + extra}
        )
        await send({"type": "http.response.body", "body": content if status != 204 else b""})
    finally:
        if draining is not None:
            draining.cancel()


async def _read_away(receive: Receive) -> None:
    """Take what a request still brings, and drop it, until it ends."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return
