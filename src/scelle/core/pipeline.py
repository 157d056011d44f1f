"""Write-behind: a thread writes finished buffers while the caller fills the next.

Encrypting or decrypting a chunk (AES-GCM releases the GIL) and reading the
next one overlap with writing the previous one, on a second core. Memory is
bounded by a fixed pool of buffers: the producer waits when all are in flight.
"""

from __future__ import annotations

import queue
import threading
from types import TracebackType

from scelle.core.files import Writable, write_all

_STOP = None


class WriteBehind:
    """Ordered asynchronous writes to `sink` from a pool of `count` buffers of `size` bytes.

    Use as a context manager: leaving the block waits for every write and
    re-raises the first write error. Errors are also raised by `buffer()` as
    soon as they are known, so a full disk stops the producer early.
    """

    def __init__(self, sink: Writable, *, size: int, count: int = 4) -> None:
        self._sink = sink
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(count):
            self._free.put(bytearray(size))
        self._full: queue.Queue[tuple[bytearray, int, int] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="scelle-write-behind", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._full.get()) is not _STOP:
            buffer, start, end = item
            if self._error is None:
                try:
                    write_all(self._sink, memoryview(buffer)[start:end])
                except BaseException as error:  # noqa: BLE001 - handed to the producer
                    self._error = error
            self._free.put(buffer)

    def _raise_pending(self) -> None:
        if self._error is not None:
            raise self._error

    def buffer(self) -> bytearray:
        """A free buffer to fill; waits while all are being written."""
        self._raise_pending()
        buffer = self._free.get()
        self._raise_pending()
        return buffer

    def submit(self, buffer: bytearray, end: int, start: int = 0) -> None:
        """Queue `buffer[start:end]` (a buffer from `buffer()`) for writing, in order."""
        self._full.put((buffer, start, end))

    def close(self) -> None:
        """Wait for every queued write; raise the first error."""
        if self._thread.is_alive():
            self._full.put(_STOP)
            self._thread.join()
        self._raise_pending()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
            return
        # Already failing: stop the writer, keep the original error.
        self._full.put(_STOP)
        self._thread.join()


class ChunkPipe:
    """An in-process pipe of whole chunks from a writer thread to a reader.

    An OS pipe holds 64 KiB: streaming a GiB through one costs tens of
    thousands of system calls and thread switches, more than decrypting it.
    Here the writer hands over each chunk (at most `depth` wait), the reader
    takes them as they come. `close()` on the reader's side makes the
    writer's next `write` raise BrokenPipeError, so a writer never hangs.
    """

    def __init__(self, *, depth: int = 4) -> None:
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._whole = b""
        self._current = memoryview(b"")
        self._ended = False
        self._closed = threading.Event()

    # --- the writer's side ---

    def _put(self, item: bytes | None) -> None:
        while True:
            if self._closed.is_set():
                raise BrokenPipeError("the reader of the pipe stopped")
            try:
                self._chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._put(bytes(data))
        return len(data)

    def finish(self) -> None:
        """The end of the data: the reader's next read past it returns b""."""
        self._put(_STOP)

    # --- the reader's side ---

    def read(self, size: int = -1, /) -> bytes:
        if not self._current:
            if self._ended:
                return b""
            item = self._chunks.get()
            if item is _STOP:
                self._ended = True
                return b""
            self._whole = item
            self._current = memoryview(item)
        count = len(self._current) if size < 0 else min(size, len(self._current))
        if count == len(self._whole):  # a whole chunk: no copy
            self._current = memoryview(b"")
            return self._whole
        piece = bytes(self._current[:count])
        self._current = self._current[count:]
        return piece

    def readinto(self, buffer: memoryview, /) -> int:
        piece = self.read(len(buffer))
        buffer[: len(piece)] = piece
        return len(piece)

    def readline(self, size: int = -1, /) -> bytes:
        raise OSError("a chunk pipe has no lines")

    def close(self) -> None:
        """The reader gives up: the writer stops at its next write."""
        self._closed.set()
