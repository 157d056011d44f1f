"""The client's own rules: which addresses it talks to, how answers become errors."""

from __future__ import annotations

import io

import httpx
import pytest

from scelle.client.api import PlatformClient, _error, check_platform_url
from scelle.core.errors import (
    InvalidInputError,
    NotAuthenticatedError,
    NotFoundError,
    PermissionDeniedError,
    PlatformUnavailableError,
    RuleViolationError,
    TooManyAttemptsError,
)


def test_plain_http_only_on_loopback() -> None:
    assert check_platform_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    assert check_platform_url("http://[::1]:8000") == "http://[::1]:8000"
    assert check_platform_url("http://localhost:8000") == "http://localhost:8000"
    assert check_platform_url("https://marches.example.fr/") == "https://marches.example.fr"
    with pytest.raises(InvalidInputError, match="in clear"):
        check_platform_url("http://marches.example.fr")
    for wrong in ("ftp://x", "marches.example.fr", "https://"):
        with pytest.raises(InvalidInputError):
            check_platform_url(wrong)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, InvalidInputError),
        (401, NotAuthenticatedError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, RuleViolationError),
        (422, InvalidInputError),
        (429, TooManyAttemptsError),
        (500, PlatformUnavailableError),
        (502, PlatformUnavailableError),
    ],
)
def test_statuses_become_the_cores_errors(status: int, kind: type) -> None:
    error = _error(httpx.Response(status, json={"detail": "refusé", "hint": "faites ceci"}))
    assert type(error) is kind
    assert "refusé" in error.message
    if status < 500:
        assert error.hint == "faites ceci"
    garbled = _error(httpx.Response(status, text="<html>proxy error</html>"))
    assert f"HTTP {status}" in garbled.message


def test_an_unreachable_platform_is_said_so() -> None:
    # Port 9 (discard) on loopback: nothing listens there on our machines.
    with (
        PlatformClient("http://127.0.0.1:9", timeout=2) as client,
        pytest.raises(PlatformUnavailableError, match="cannot reach the platform"),
    ):
        client.health()
    # An envelope's download, which goes through the standard library's client, says the same.
    with (
        PlatformClient("http://127.0.0.1:9", timeout=2) as client,
        pytest.raises(PlatformUnavailableError, match="cannot reach the platform at http://127"),
    ):
        client.download_envelope("6f1d2c3b-0000-4000-8000-000000000001", "offre",
                                 io.BytesIO(), start=0, size=10)  # fmt: skip
