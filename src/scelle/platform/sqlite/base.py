"""Django's SQLite backend, with the platform's writers queued inside the process.

SQLite has one writer at a time. When threads of the same server contend,
SQLite's own busy handler makes the waiting ones sleep in growing steps
(up to 100 ms) before trying again: under a burst of deposits most of the
time went there. Here a thread takes a process-wide lock before
`BEGIN IMMEDIATE` and gives it back at commit, rollback or close, so the
next writer starts the moment the last one ends. SQLite's own lock still
orders this process against others (`scelle admin`, a second server).
"""

from __future__ import annotations

import threading

from django.db import OperationalError
from django.db.backends.sqlite3 import base

WAIT_SECONDS = 30.0
"""The longest a writer waits for its turn, as SQLite's own busy timeout."""

_writer = threading.Lock()


class DatabaseWrapper(base.DatabaseWrapper):
    _writing = False

    def _start_transaction_under_autocommit(self) -> None:
        if not _writer.acquire(timeout=WAIT_SECONDS):
            raise OperationalError("database is locked: another write did not end in time")
        self._writing = True
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # not in django-stubs
        except BaseException:
            self._end_writing()
            raise

    def _end_writing(self) -> None:
        if self._writing:
            self._writing = False
            _writer.release()

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]  # not in django-stubs
        finally:
            self._end_writing()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]  # not in django-stubs
        finally:
            self._end_writing()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]  # not in django-stubs
        finally:
            self._end_writing()
