"""The gateway's body reading, with a scripted client: slow bodies are cut off by window,
fast ones are not, and a client that leaves is noticed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scelle.platform import gateway


def _client(pieces: list[tuple[float, bytes, bool]]) -> Any:
    """A `receive` as hypercorn's: a queue the connection fills with each (delay, bytes,
    more) in turn (taking from a queue loses nothing when the wait is cancelled)."""

    async def receive() -> Any:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def connection() -> None:
            for delay, body, more in pieces:
                await asyncio.sleep(delay)
                await queue.put({"type": "http.request", "body": body, "more_body": more})

        receive.task = asyncio.ensure_future(connection())  # type: ignore[attr-defined]
        return queue.get

    return receive


async def _read(client: Any) -> bytes:
    receive = await client()
    return b"".join([piece async for piece in gateway._body_pieces(receive)])


@pytest.fixture
def short_windows(monkeypatch):
    monkeypatch.setattr(gateway, "WINDOW", 0.2)
    monkeypatch.setattr(gateway, "MINIMUM_BYTES", 100)


def test_a_body_arriving_steadily_is_read_whole(short_windows):
    pieces = [(0.05, b"x" * 60, True) for _ in range(12)] + [(0.0, b"end", False)]
    assert asyncio.run(_read(_client(pieces))) == b"x" * 720 + b"end"


def test_a_body_slower_than_the_minimum_is_cut_off(short_windows):
    pieces = [(0.15, b"x", True) for _ in range(10)]
    with pytest.raises(gateway._TooSlow):
        asyncio.run(_read(_client(pieces)))


def test_a_body_that_stops_is_cut_off_after_a_window(short_windows):
    with pytest.raises(gateway._TooSlow):
        asyncio.run(_read(_client([(0.0, b"x" * 500, True)])))


def test_a_client_that_leaves_is_noticed(short_windows):
    async def leaving() -> Any:
        async def receive() -> dict[str, Any]:
            return {"type": "http.disconnect"}

        return receive

    with pytest.raises(gateway._Disconnected):
        asyncio.run(_read(leaving))


def test_a_small_body_in_one_piece_needs_no_window():
    assert asyncio.run(_read(_client([(0.0, b'{"a": 1}', False)]))) == b'{"a": 1}'


def test_bodies_other_than_chunks_are_bounded(monkeypatch):
    pieces = [(0.0, b"x" * 1000, True) for _ in range(5)] + [(0.0, b"", False)]

    async def read() -> bytes:
        return await gateway._read_body(await _client(pieces)(), 3000)

    with pytest.raises(gateway._TooLarge):
        asyncio.run(read())
