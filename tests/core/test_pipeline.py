"""Write-behind: order kept, errors surface, memory bounded by the pool."""

from __future__ import annotations

import io

import pytest

from scelle.core.pipeline import WriteBehind


def test_order_is_kept() -> None:
    sink = io.BytesIO()
    with WriteBehind(sink, size=8, count=2) as writer:
        for index in range(100):
            buffer = writer.buffer()
            buffer[:3] = f"{index:03}".encode()
            writer.submit(buffer, 3)
    assert sink.getvalue() == b"".join(f"{index:03}".encode() for index in range(100))


def test_a_write_error_stops_the_producer() -> None:
    class Broken(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: object) -> int:
            raise OSError(5, "Input/output error")

    with (
        pytest.raises(OSError, match="Input/output error"),
        WriteBehind(Broken(), size=4, count=2) as writer,
    ):
        for _ in range(1000):
            buffer = writer.buffer()
            writer.submit(buffer, 4)
