"""A platform that answers 503 (it shed the request, or its database was busy: nothing
was done) gets the same request again after its Retry-After, a bounded number of times."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from scelle.client.api import BUSY_RETRIES, LONGEST_RETRY_AFTER, PlatformClient
from scelle.core.errors import PlatformAnswerError, PlatformUnavailableError
from tests.assistant.hostile import hostile_platform, json_answer


def test_a_busy_answer_is_sent_again_after_its_retry_after() -> None:
    slept: list[float] = []
    upload = f"/api/uploads/{uuid.uuid4()}"
    with hostile_platform() as fake:
        waits = ["2", "100"]  # the second said first; 100 s is more than is believed

        def chunk(_request: Any) -> Any:
            if waits:
                headers = {"Content-Type": "application/json", "Retry-After": waits.pop()}
                return 503, headers, b'{"detail": "busy"}'
            return 204, {"Tus-Resumable": "1.0.0", "Upload-Offset": "3"}, b""

        fake.set("PATCH", upload, chunk)
        with PlatformClient(fake.url, "t", busy_retries=BUSY_RETRIES, sleep=slept.append) as c:
            assert c.send_chunk(f"{fake.url}{upload}", 0, b"abc") == 3
        sent = fake.asked("PATCH", upload)
    assert [request.body for request in sent] == [b"abc"] * 3  # the same bytes each time
    assert slept == [float(LONGEST_RETRY_AFTER), 2.0]


def test_a_platform_that_stays_busy_is_said_busy_after_the_retries() -> None:
    slept: list[float] = []
    with hostile_platform() as fake:
        fake.set("GET", "/api/me", json_answer({"detail": "busy"}, 503))
        with (
            PlatformClient(fake.url, "t", busy_retries=3, sleep=slept.append) as client,
            pytest.raises(PlatformUnavailableError),
        ):
            client.me()
        assert len(fake.asked("GET", "/api/me")) == 4
    assert slept == [5.0, 5.0, 5.0]  # no Retry-After: five seconds


def test_without_retries_a_503_is_said_at_once() -> None:
    with hostile_platform() as fake:
        fake.set("GET", "/api/me", json_answer({"detail": "busy"}, 503))
        with PlatformClient(fake.url, "t") as client, pytest.raises(PlatformUnavailableError):
            client.me()
        assert len(fake.asked("GET", "/api/me")) == 1


def test_a_chunk_cut_on_the_way_is_resumed_where_the_platform_is() -> None:
    """Behind a load balancer, the host taking a chunk died after storing 2 of its bytes:
    the balancer answered 502; the platform (another host) says it holds 2, the rest
    goes."""
    slept: list[float] = []
    upload = f"/api/uploads/{uuid.uuid4()}"
    tus = {"Tus-Resumable": "1.0.0"}
    with hostile_platform() as fake:
        answers: list[tuple[int, dict[str, str], bytes]] = [(502, {}, b"<html>Bad Gateway</html>")]

        def chunk(_request: Any) -> Any:
            return answers.pop() if answers else (204, {**tus, "Upload-Offset": "5"}, b"")

        fake.set("PATCH", upload, chunk)
        fake.set("HEAD", upload, lambda _r: (200, {**tus, "Upload-Offset": "2"}, b""))
        with PlatformClient(fake.url, "t", busy_retries=BUSY_RETRIES, sleep=slept.append) as c:
            assert c.send_chunk(f"{fake.url}{upload}", 0, b"abcde") == 5
        sent = fake.asked("PATCH", upload)
        assert [(r.headers["Upload-Offset"], r.body) for r in sent] == [
            ("0", b"abcde"),
            ("2", b"cde"),
        ]
    assert slept == [1.0]


@pytest.mark.parametrize("held", ["7", "0x", "99999999999999999999999"])
def test_a_lying_offset_after_a_cut_chunk_is_refused(held: str) -> None:
    upload = f"/api/uploads/{uuid.uuid4()}"
    tus = {"Tus-Resumable": "1.0.0"}
    with hostile_platform() as fake:
        fake.set("PATCH", upload, lambda _r: (504, {}, b""))
        fake.set("HEAD", upload, lambda _r: (200, {**tus, "Upload-Offset": held}, b""))
        with (
            PlatformClient(fake.url, "t", busy_retries=1, sleep=lambda _s: None) as client,
            pytest.raises(PlatformAnswerError),
        ):
            client.send_chunk(f"{fake.url}{upload}", 0, b"abcde")
        assert len(fake.asked("PATCH", upload)) == 1


def test_a_chunk_that_keeps_failing_is_said_after_the_resumes() -> None:
    upload = f"/api/uploads/{uuid.uuid4()}"
    tus = {"Tus-Resumable": "1.0.0"}
    slept: list[float] = []
    with hostile_platform() as fake:
        fake.set("PATCH", upload, lambda _r: (502, {}, b""))
        fake.set("HEAD", upload, lambda _r: (200, {**tus, "Upload-Offset": "0"}, b""))
        with (
            PlatformClient(fake.url, "t", busy_retries=1, sleep=slept.append) as client,
            pytest.raises(PlatformUnavailableError, match="502"),
        ):
            client.send_chunk(f"{fake.url}{upload}", 0, b"abcde")
        assert len(fake.asked("PATCH", upload)) == 4
    assert slept == [1.0, 2.0, 4.0]
