"""The platform's front door: the ASGI application `scelle serve` runs under hypercorn.

On a deadline's last hour a thousand companies on slow office uplinks may be
connected at once, and some may be hostile. A server that gives each
connection a thread while its request arrives (cheroot, before) stops
answering as soon as a few connections send slowly or nothing at all. Here
the event loop holds the connections and reads what arrives; a thread works
only on a request that has fully arrived, and only once admitted:

- every request is classed (health, deposits and assistants, logins, logged-in,
  anonymous) and named by its client (IPv4 address, IPv6 /64; behind a trusted
  proxy, the address it forwards); `admission.Admission` decides who gets the
  next thread: classes in priority order, clients in turn, a request that would
  wait too long shed with 503 + Retry-After;
- a request whose client hangs up while it waits is dropped before a thread
  takes it (hypercorn says `http.disconnect`; `pipelining` makes it say so for
  pipelined requests too, and parse none of a departed client's);
- a tus PATCH (`/api/uploads/<id>`) is checked in the thread pool (token,
  upload, offset), then its body streams from the event loop straight into the
  upload's file (`storage.appender`; in an object store, a local spool file stored
  once the chunk has arrived): a chunk sent at 64 KiB/s holds no thread;
- every other request's body, at most `BODY_LIMIT` bytes, is read by the event
  loop first; then Django answers it on a pool thread (`_call_django`, a WSGI
  call), and the thread is free again before a byte of the answer is sent: a
  client that reads its answer slowly, or never, holds no thread (a sealed
  envelope is read from its file by the event loop, piece by piece);
- a body that brings fewer than `MINIMUM_BYTES` in any `WINDOW` seconds is cut
  off (the bytes of a PATCH are kept, as tus wants, and the company resumes);
  an answer the client takes no piece of in `WINDOW` seconds is cut off too;
- a connection that sends no complete request head within hypercorn's
  keep-alive timeout is closed (`server.KEEP_ALIVE_SECONDS`), and a head longer
  than `HEAD_LIMIT` is refused (431) however it arrived;
- a `Range` header asking more than one range is ignored (the whole answer);
- an assistant's long poll for jobs (`GET /api/assistant/jobs/next?wait=N`) is
  asked of Django once a second until a job comes or `N` seconds pass: waiting
  for work holds no thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import ipaddress
import json
import logging
import random
import re
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar, cast

from a2wsgi.wsgi import build_environ
from django.core.handlers.wsgi import WSGIHandler
from django.db import DatabaseError, close_old_connections
from django.http import HttpRequest
from django.utils import translation
from django.utils.datastructures import CaseInsensitiveMapping

from scelle.core.errors import ScelleError
from scelle.platform import metrics
from scelle.platform.accounts.services import client_of
from scelle.platform.admission import Admission, Kind, Limits, Shed, Ticket
from scelle.platform.answers import BUSY_SECONDS, busy_body, error_answer, error_body, status_for
from scelle.platform.deposits import services, storage, tus

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
_T = TypeVar("_T")

BODY_LIMIT = 1 << 20
"""The largest body of a request other than a tus PATCH (the JSON API's are small)."""
HEAD_LIMIT = 16 << 10
"""The longest request line and headers taken (hypercorn checks only heads still arriving)."""
WINDOW = 30.0
"""Seconds over which a body's progress, or an answer's, is judged."""
MINIMUM_BYTES = 32 << 10
"""Bytes a body must bring in each window (about 1 KiB/s), unless it is complete."""
FILE_PIECE = 1 << 20
"""Bytes of a sealed envelope read from its file and sent at a time."""

SHED_PAUSE = 2.0
"""Seconds a request refused on arrival waits before its 503 is sent."""

POLL_EVERY = 1.0
"""Seconds between two looks for an assistant's next job during its long poll."""

_UPLOAD = re.compile(r"/api/uploads/([^/]+)")
_LONG_POLL = "/api/assistant/jobs/next"
_WAIT = re.compile(rb"(?:^|&)wait=([0-9]{1,2})(?:&|$)")
_DEPOSITS = re.compile(
    r"/api/(uploads(/.*)?|assistant/.*|(.*/)?deposits(/.*)?)"
    r"|/mes-depots/.*|/consultations/ouvertes/[^/]+/deposer/"
)
_LOGIN = ("/api/auth/login", "/connexion/", "/favicon.ico")
_SESSION_COOKIE = re.compile(r"(?:^|;)\s*scelle_session=")
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


class _Gone(Exception):
    """The client hung up while its request waited: nothing is done for it."""


@dataclass(frozen=True)
class Proxies:
    """The reverse proxies whose X-Forwarded-For is believed (SCELLE_TRUSTED_PROXIES)."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def client(self, scope: Scope, headers: CaseInsensitiveMapping[str]) -> str:
        """The address the request comes from: the peer, or, when the peer is a trusted
        proxy, the last address of X-Forwarded-For that is not one."""
        peer = (scope.get("client") or ("", 0))[0]
        chain = [peer]
        if self.networks:
            forwarded = headers.get("X-Forwarded-For", "")
            chain = [part.strip() for part in forwarded.split(",") if part.strip()] + chain
        for address in reversed(chain):
            if not self._trusted(address):
                # What a proxy forwards is text: anything but an address names no one,
                # and would let a client pick a new name for each request.
                return address if _is_address(address) else peer
        return chain[0]

    def _trusted(self, address: str) -> bool:
        return _is_address(address) and any(
            ipaddress.ip_address(address) in network for network in self.networks
        )


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def kind_of(scope: Scope, headers: CaseInsensitiveMapping[str]) -> Kind:
    """The request's class for admission: by its route, and by whether it carries a
    credential (a forged one costs one token lookup, then counts as its client's)."""
    path = scope["path"]
    if path == "/api/health":
        return Kind.HEALTH
    if path in _LOGIN or path.startswith("/static/"):
        return Kind.LOGIN
    credential = headers.get("Authorization", "").startswith("Bearer ") or bool(
        _SESSION_COOKIE.search(headers.get("Cookie", ""))
    )
    if not credential:
        return Kind.ANONYMOUS
    return Kind.DEPOSIT if _DEPOSITS.fullmatch(path) else Kind.MEMBER


@dataclass
class _Answer:
    """Django's answer, taken whole on its thread (or its file, sent by the event loop)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    file: _FileWrapper | None = None


class _FileWrapper:
    """`wsgi.file_wrapper`: Django hands over the file of a FileResponse, which the
    event loop then sends; closing it closes the response (Django's own wiring)."""

    def __init__(self, filelike: IO[bytes], block_size: int = FILE_PIECE) -> None:
        self.filelike = filelike

    def __iter__(self) -> Iterable[bytes]:  # pragma: no cover - never iterated here
        return iter(lambda: self.filelike.read(FILE_PIECE), b"")

    def close(self) -> None:
        self.filelike.close()


def _call_django(application: WSGIHandler, environ: dict[str, Any]) -> _Answer:
    """One WSGI call, on a pool thread: the answer's status, headers and whole body."""
    started: list[tuple[str, list[tuple[str, str]]]] = []
    written: list[bytes] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> Callable[[bytes], None]:
        started[:] = [(status, headers)]
        return written.append

    result = cast(Iterable[bytes], application(environ, start_response))
    status, headers = started[0]
    answer = _Answer(
        int(status.split(" ", 1)[0]),
        [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers],
    )
    if isinstance(result, _FileWrapper):
        answer.file = result
        return answer
    try:
        answer.body = b"".join([*written, *result])
    finally:
        closing = getattr(result, "close", None)
        if closing is not None:
            closing()  # Django's request_finished: the thread's database connection
    return answer


@dataclass
class _Request:
    """What the gateway knows of a request once its head is in."""

    scope: Scope
    headers: CaseInsensitiveMapping[str]
    kind: Kind
    address: str
    """The client's address: the peer's, or the one a trusted proxy forwards."""
    watch: asyncio.Future[Message] | None = field(default=None)
    """The next message of the request once its body is read: `http.disconnect`."""

    @property
    def client(self) -> str:
        """Who asks, for admission: the address, or its IPv6 /64."""
        return client_of(self.address)

    def gone(self) -> bool:
        return self.watch is not None and self.watch.done()


class Gateway:
    """The ASGI application: admission, tus PATCH bodies on the event loop, the rest to
    Django on a pool thread."""

    def __init__(
        self, wsgi_application: WSGIHandler, *, limits: Limits, proxies: Proxies | None = None
    ) -> None:
        self._application = wsgi_application
        self._pool = ThreadPoolExecutor(limits.threads, thread_name_prefix="django")
        self._files = ThreadPoolExecutor(2, thread_name_prefix="envelope-reader")
        self.admission = Admission(limits)
        self._proxies = proxies or Proxies()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets here: hypercorn closes the connection
        if _head_size(scope) > HEAD_LIMIT:
            refusal = error_body("this request's head is too large")
            await _answer(send, 431, refusal, unread=receive)
            return
        headers = _headers(scope)
        _one_range_at_most(scope, headers)
        request = _Request(
            scope, headers, kind_of(scope, headers), self._proxies.client(scope, headers)
        )
        send = _counted(send, request.kind)
        found = _UPLOAD.fullmatch(scope["path"])
        if found is not None and scope["method"] == "PATCH":
            await self._patch(request, receive, send, found.group(1))
            return
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
        request.watch = asyncio.ensure_future(receive())
        try:
            if scope["path"] == _LONG_POLL and scope["method"] == "GET":
                await self._long_poll(request, send)
            else:
                answer = await self._django(request, body)
                await self._send(request, answer, send)
        except _Gone:
            return
        except Shed as shed:
            # A flood's client asks again the moment it is answered, and a refusal is
            # cheap but not free for the event loop: a refusal on arrival waits a little
            # (a client that left gets none), so one laptop's thousand connections cost
            # the loop a few hundred requests a second, not as many as the laptop can
            # write. The connection then closes, and its pipelined requests with it.
            if not shed.waited:
                with contextlib.suppress(TimeoutError):  # spread out: no synchronous waves
                    async with asyncio.timeout(SHED_PAUSE * (0.5 + random.random())):  # noqa: S311
                        await asyncio.shield(request.watch)
                if request.gone():
                    return
            busy = [(b"retry-after", str(BUSY_SECONDS).encode()), (b"connection", b"close")]
            await _answer(send, 503, _busy(headers), busy)
        finally:
            request.watch.cancel()

    async def _django(self, request: _Request, body: bytes) -> _Answer:
        """Django's answer to a request whose body is read, on a pool thread once admitted."""
        environ: dict[str, Any] = dict(
            build_environ(cast(Any, request.scope), cast(Any, io.BytesIO(body)))
        )
        environ["REMOTE_ADDR"] = request.address
        environ["wsgi.errors"] = sys.stderr
        environ["wsgi.file_wrapper"] = _FileWrapper
        return await self._in_pool(request, lambda: _call_django(self._application, environ))

    async def _send(self, request: _Request, answer: _Answer, send: Send) -> None:
        """Send Django's answer from the event loop; an envelope's file piece by piece."""
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": answer.headers})  # fmt: skip
        if answer.file is None:
            await send({"type": "http.response.body", "body": answer.body})
            return
        loop = asyncio.get_running_loop()
        try:
            while not request.gone():
                piece = await loop.run_in_executor(self._files, answer.file.filelike.read,
                                                   FILE_PIECE)  # fmt: skip
                if not piece:
                    await send({"type": "http.response.body", "body": b""})
                    return
                # A reader that takes no piece in a window is cut off; returning
                # mid-answer makes hypercorn close the connection.
                async with asyncio.timeout(WINDOW):
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
        except TimeoutError:
            return
        finally:
            await loop.run_in_executor(self._files, answer.file.close)

    async def _long_poll(self, request: _Request, send: Send) -> None:
        """Ask Django for the next job until one comes (or an error), or `wait` ends."""
        found = _WAIT.search(request.scope.get("query_string", b""))
        wait = min(int(found.group(1)), 30) if found else 0
        loop = asyncio.get_running_loop()
        end = loop.time() + wait
        while True:
            answer = await self._django(request, b"")
            if answer.status != 204 or loop.time() + POLL_EVERY > end:
                await self._send(request, answer, send)
                return
            with contextlib.suppress(TimeoutError):  # a departed assistant stops the poll
                async with asyncio.timeout(POLL_EVERY):
                    await asyncio.shield(cast(asyncio.Future[Message], request.watch))
            if request.gone():
                raise _Gone

    async def _in_pool(self, request: _Request, function: Callable[[], _T]) -> _T:
        """Run `function` on a pool thread once admission lets the request in: `Shed` when
        it would wait too long, `_Gone` when its client hangs up while it waits."""
        admitted = asyncio.ensure_future(self.admission.enter(request.kind, request.client))
        if request.watch is not None:
            either: set[asyncio.Future[Any]] = {admitted, request.watch}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not admitted.done():
                admitted.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await admitted
                raise _Gone
        began = asyncio.get_running_loop().time()
        try:
            ticket: Ticket = await admitted
        except Shed:
            metrics.SHED.labels(request.kind.name.lower()).inc()
            raise
        waited = asyncio.get_running_loop().time() - began
        metrics.QUEUE_WAIT.labels(request.kind.name.lower()).observe(waited)
        if request.gone():
            self.admission.leave(ticket)
            raise _Gone

        def run() -> _T:
            close_old_connections()
            try:
                return function()
            finally:
                close_old_connections()

        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, run)
        finally:
            self.admission.leave(ticket)

    async def _patch(self, request: _Request, receive: Receive, send: Send, upload_id: str) -> None:
        """tus PATCH: the same checks and answers as `tus.upload`, the body on the loop.

        Long because, as tus.upload, it answers each header problem with its own status
        before it streams the body.
        """
        headers = request.headers
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

        busy = [*tus_headers, (b"retry-after", str(BUSY_SECONDS).encode())]
        try:
            appender = await self._in_pool(request, begin)
        except ScelleError as error:
            body = error_answer(error)
            await _answer(send, status_for(error), body, tus_headers, unread=receive)
            return
        except Shed:
            await _answer(send, 503, _busy(headers), busy, unread=receive)
            return
        except (DatabaseError, storage.StoreUnavailableError):
            _log.exception("could not look upload %s up", upload_id)
            await _answer(send, 503, _busy(headers), busy, unread=receive)
            return
        stopped: Exception | None = None
        pieces = _body_pieces(receive)
        metrics.UPLOADS.inc()
        try:
            async for piece in pieces:
                appender.write(piece)
                metrics.INGESTED.inc(len(piece))
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
            metrics.UPLOADS.dec()
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
        except (OSError, DatabaseError):  # the disk, the object store, the lock's database
            _log.exception("could not store a chunk of upload %s", upload_id)
            if stopped is None:
                body = error_body("the platform could not store this chunk; try again later")
                await _answer(send, 503, body, busy, unread=receive)
            return
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


def _counted(send: Send, kind: Kind) -> Send:
    """`send`, counting each answer by the request's class and its status family."""
    label = kind.name.lower()

    async def counting(message: Message) -> None:
        if message["type"] == "http.response.start":
            metrics.REQUESTS.labels(label, f"{int(message['status']) // 100}xx").inc()
        await send(message)

    return counting


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


def _head_size(scope: Scope) -> int:
    """The request head's length as sent: request line and header lines."""
    line = len(scope["method"]) + len(scope.get("raw_path") or b"") + 12
    return line + sum(len(name) + len(value) + 4 for name, value in scope["headers"])


def _one_range_at_most(scope: Scope, headers: CaseInsensitiveMapping[str]) -> None:
    """Drop a `Range` header that asks for more than one range: the whole answer goes
    instead (RFC 9110 §14.2 lets a server ignore Range), and no client makes the
    platform cut an answer into a thousand parts."""
    wanted = headers.get("Range")
    if wanted is not None and ("," in wanted or len(wanted) > 100):
        scope["headers"] = [(n, v) for n, v in scope["headers"] if n.lower() != b"range"]


def _busy(headers: CaseInsensitiveMapping[str]) -> dict[str, str | None]:
    with translation.override(_language(headers)):
        return busy_body()


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
