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


def test_chunk_pipe_carries_every_byte_in_order_and_stops_a_writer() -> None:
    import os
    import threading

    from scelle.core.pipeline import ChunkPipe

    data = os.urandom(3 * (1 << 20) + 17)
    pipe = ChunkPipe(depth=2)

    def write() -> None:
        for start in range(0, len(data), 1 << 20):
            pipe.write(data[start : start + (1 << 20)])
        pipe.finish()

    writer = threading.Thread(target=write)
    writer.start()
    received = bytearray()
    while piece := pipe.read(300_000):
        received += piece
    writer.join()
    assert bytes(received) == data and pipe.read() == b""
    # A reader that gives up: the writer is told, never left hanging on a full pipe.
    stopped = ChunkPipe(depth=1)
    stopped.write(b"x")
    stopped.close()
    with pytest.raises(BrokenPipeError):
        stopped.write(b"y")
