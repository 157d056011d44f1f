"""The gateway's body reading, with a scripted client: slow bodies are cut off by window,
fast ones are not, and a client that leaves is noticed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scelle.platform import gateway
from scelle.platform.admission import Kind


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


def _scope(path: str, headers: dict[str, str], peer: str = "192.0.2.7") -> dict[str, Any]:
    return {
        "path": path,
        "client": (peer, 40000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }


@pytest.mark.parametrize(
    ("path", "headers", "kind"),
    [
        ("/api/health", {}, Kind.HEALTH),
        ("/api/health", {"Authorization": "Bearer x"}, Kind.HEALTH),
        ("/connexion/", {}, Kind.LOGIN),
        ("/api/auth/login", {}, Kind.LOGIN),
        ("/static/web/scelle.css", {}, Kind.LOGIN),
        ("/api/openapi.json", {}, Kind.ANONYMOUS),
        ("/api/uploads/", {}, Kind.ANONYMOUS),  # no credential: no priority
        ("/api/uploads/abc", {"Authorization": "Bearer x"}, Kind.DEPOSIT),
        ("/api/tenders/AO-1/deposits", {"Authorization": "Bearer x"}, Kind.DEPOSIT),
        ("/api/deposits/1/envelopes/offre", {"Authorization": "Bearer x"}, Kind.DEPOSIT),
        ("/api/assistant/jobs/next", {"Authorization": "Bearer x"}, Kind.DEPOSIT),
        ("/mes-depots/jeton/", {"Cookie": "a=b; scelle_session=s"}, Kind.DEPOSIT),
        ("/api/tenders", {"Authorization": "Bearer x"}, Kind.MEMBER),
        ("/consultations/", {"Cookie": "scelle_session=s"}, Kind.MEMBER),
        ("/consultations/", {"Cookie": "not_scelle_session=s"}, Kind.ANONYMOUS),
    ],
)
def test_requests_are_classed_by_route_and_credential(path, headers, kind):
    scope = _scope(path, headers)
    assert gateway.kind_of(scope, gateway._headers(scope)) == kind


def test_the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy():
    import ipaddress

    forwarded = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9, 10.0.0.2"}
    direct = _scope("/", forwarded, peer="203.0.113.50")
    assert gateway.Proxies().client(direct, gateway._headers(direct)) == "203.0.113.50"
    proxies = gateway.Proxies((ipaddress.ip_network("10.0.0.0/8"),))
    via = _scope("/", forwarded, peer="10.0.0.1")
    # The last address the trusted proxies did not add: what a client writes before it
    # (198.51.100.1 here) is not believed.
    assert proxies.client(via, gateway._headers(via)) == "203.0.113.9"
    lying = _scope("/", {"X-Forwarded-For": "10.0.0.9"}, peer="10.0.0.1")
    assert proxies.client(lying, gateway._headers(lying)) == "10.0.0.9"
    garbled = _scope("/", {"X-Forwarded-For": "a new name each time"}, peer="10.0.0.1")
    assert proxies.client(garbled, gateway._headers(garbled)) == "10.0.0.1"


def test_a_head_is_measured_as_sent_and_many_ranges_are_dropped():
    scope = {**_scope("/x", {"Range": "bytes=0-1,2-3", "Host": "h"}), "method": "GET"}
    scope["raw_path"] = b"/x"
    assert gateway._head_size(scope) == len(
        b"GET /x HTTP/1.1\r\nrange: bytes=0-1,2-3\r\nhost: h\r\n"
    )
    gateway._one_range_at_most(scope, gateway._headers(scope))
    assert [name for name, _ in scope["headers"]] == [b"host"]
    single = _scope("/x", {"Range": "bytes=5-"})
    gateway._one_range_at_most(single, gateway._headers(single))
    assert single["headers"] == [(b"range", b"bytes=5-")]


def _http_scope(path: str) -> dict[str, Any]:
    return {
        "type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
        "query_string": b"", "http_version": "1.1", "scheme": "http",
        "server": ("127.0.0.1", 8000), "client": ("192.0.2.1", 40000), "headers": [],
    }  # fmt: skip


def test_an_answer_nobody_reads_holds_no_thread(tmp_path):
    """The only thread is free again while a client reads nothing of a 10 MB envelope
    (sent from the event loop) nor of a page: the next request gets it at once."""
    from scelle.platform.admission import Limits

    envelope = tmp_path / "envelope.p7m"
    envelope.write_bytes(b"x" * 10_000_000)

    def application(environ: Any, start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/envelope":
            start_response("200 OK", [("Content-Length", "10000000")])
            return environ["wsgi.file_wrapper"](envelope.open("rb"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"page"]

    async def test() -> None:
        front = gateway.Gateway(application, limits=Limits(threads=1))  # type: ignore[arg-type]
        never = asyncio.Event()
        stuck: list[dict[str, Any]] = []

        def receiver() -> Any:
            """A request without a body whose client then stays (no disconnect)."""
            given: list[bool] = []

            async def receive() -> Any:
                if not given:
                    given.append(True)
                    return {"type": "http.request", "body": b"", "more_body": False}
                await never.wait()
                return {"type": "http.disconnect"}

            return receive

        async def not_reading(message: Any) -> None:
            stuck.append(message)
            if message["type"] == "http.response.body":
                await never.wait()  # the client's window stays shut

        readers = [
            asyncio.ensure_future(front(_http_scope(path), receiver(), not_reading))
            for path in ("/envelope", "/page")
        ]
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(stuck) == 4:
                break
        assert [m["type"] for m in stuck].count("http.response.body") == 2
        assert front.admission.busy == 0
        answered: list[dict[str, Any]] = []

        async def reading(message: Any) -> None:
            answered.append(message)

        await asyncio.wait_for(front(_http_scope("/page"), receiver(), reading), 5)
        assert answered[-1]["body"] == b"page"
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

    asyncio.run(test())
