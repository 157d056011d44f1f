"""hypercorn's HTTP/1.1 protocol, reading on while a request is worked on.

hypercorn 0.18 stops reading a connection as soon as a second, pipelined request
sits behind the one in progress (h11 says PAUSED), and starts reading again only
once the answer is sent. So a client that pipelines three requests and hangs up
is not seen to be gone: its first request waits for a thread as if someone were
there, then hypercorn parses the second from its buffer and serves it to a closed
socket, and the third (3,000 OpenAPI documents built for 1,000 departed clients
on deadline day, half of them after the attacker had exited).

Here the connection is read on while a request runs, as it already is when
nothing is pipelined: up to `PIPELINE_BYTES` wait in h11's buffer (more, and
reading pauses as before). When the client hangs up, hypercorn closes the
request's stream, the gateway sees `http.disconnect` and drops the request if
no thread has taken it yet, and the pipelined requests behind it are never
parsed. This is nginx's rule too: a client that closed its side has left.

`install()` puts this class where hypercorn's protocol wrapper looks for it. The
methods below follow hypercorn 0.18's `H11Protocol` (pinned in pyproject.toml);
only the PAUSED branch and the restart after a recycled connection differ.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import hypercorn.protocol
from hypercorn.events import Closed, Updated
from hypercorn.protocol.events import Body, Data, EndBody
from hypercorn.protocol.h11 import STREAM_ID, H11Protocol

PIPELINE_BYTES = 64 << 10
"""Bytes of pipelined requests read ahead while one is in progress."""


class ReadingH11Protocol(H11Protocol):
    """hypercorn's `H11Protocol`, which keeps reading while a request is in progress."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401 (hypercorn's)
        super().__init__(*args, **kwargs)
        self._parsing = asyncio.Lock()
        self._pipelined = False
        """A request waits in h11's buffer for the one in progress to end."""

    async def _handle_events(self) -> None:
        # Two tasks may parse: the read loop, and the one that ends a request (below).
        async with self._parsing:
            await self._parse()
        # Back-pressure, outside the lock: a client that pipelines much is read no more
        # until its requests are answered.
        while self._pipelined and len(self.connection.trailing_data[0]) > PIPELINE_BYTES:
            await self.can_read.wait()

    async def _parse(self) -> None:
        while True:
            if self.connection.they_are_waiting_for_100_continue:
                await self._send_h11_event(
                    h11.InformationalResponse(
                        status_code=100, headers=self.config.response_headers("h11")
                    )
                )
            try:
                event = self.connection.next_event()
            except h11.RemoteProtocolError as error:
                if self.connection.our_state in {h11.IDLE, h11.SEND_RESPONSE}:
                    await self._send_error_response(error.error_status_hint)
                await self.send(Closed())
                break
            if isinstance(event, h11.Request):
                await self.send(Updated(idle=False))
                await self._check_protocol(event)
                await self._create_stream(event)
            elif event is h11.PAUSED:
                # hypercorn waits here, reading nothing: we go back to reading.
                self._pipelined = True
                await self.can_read.clear()
                break
            elif (
                isinstance(event, h11.ConnectionClosed)
                or event is h11.NEED_DATA
                or self.stream is None
            ):
                break
            elif isinstance(event, h11.Data):
                await self.stream.handle(Body(stream_id=STREAM_ID, data=event.data))
            elif isinstance(event, h11.EndOfMessage):
                await self.stream.handle(EndBody(stream_id=STREAM_ID))
            elif isinstance(event, Data):  # WebSocket pass-through (the gateway refuses them)
                await self.stream.handle(event)

    async def _maybe_recycle(self) -> None:
        await self._close_stream()
        if (
            not self.context.terminated.is_set()
            and self.connection.our_state is h11.DONE
            and self.connection.their_state is h11.DONE
        ):
            try:
                self.connection.start_next_cycle()
            except h11.LocalProtocolError:
                await self.send(Closed())
                return
            self.response = None
            self.scope = None
            await self.can_read.set()
            await self.send(Updated(idle=True))
            if self._pipelined:  # the next request was read already: parse it now
                self._pipelined = False
                self.task_group.spawn(self._handle_events)
        else:
            await self.can_read.set()
            await self.send(Closed())


def install() -> None:
    """Make hypercorn's protocol wrapper build `ReadingH11Protocol` for HTTP/1.1."""
    hypercorn.protocol.H11Protocol = ReadingH11Protocol  # type: ignore[attr-defined]
