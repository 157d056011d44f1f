"""Starting the platform: settings from the environment, migrations, keys, WSGI server.

`scelle serve` and `scelle admin` call these; nothing here is needed when a
WSGI server of one's own runs `scelle.platform.wsgi` (after `prepare`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from scelle.core.clock import Clock, system_clock

DEFAULT_THREADS = 8
"""Requests served at once; a deposit's chunk holds a thread while it arrives."""
BACKLOG = 256
SOCKET_TIMEOUT = 60
"""Seconds a request may stay silent before the server drops it."""
CHECKPOINT_POLL_SECONDS = 60
"""How often the server looks whether the hourly audit checkpoint is due."""

_log = logging.getLogger("scelle.platform")


def configure(data_dir: Path | None) -> None:
    """Load Django with the platform's settings; `data_dir` overrides SCELLE_DATA_DIR."""
    if data_dir is not None:
        os.environ["SCELLE_DATA_DIR"] = str(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "scelle.platform.settings"
    import django

    django.setup()


def prepare(clock: Clock = system_clock) -> bool:
    """Bring the database schema up to date and create the platform's keys on the first
    start; True when the keys were created now."""
    from django.core.management import call_command

    from scelle.platform.keypairs.authority import ensure_platform_keys

    call_command("migrate", interactive=False, verbosity=0)
    return ensure_platform_keys(clock)


def start_checkpoints(clock: Clock, stop: threading.Event) -> threading.Thread:
    """Sign an audit checkpoint every hour while the server runs (audit.anchors)."""
    from django.db import DatabaseError, connection

    from scelle.core.errors import ScelleError
    from scelle.platform.audit.anchors import checkpoint_if_due

    def run() -> None:
        while True:
            try:
                checkpoint_if_due(now=clock())
            except (DatabaseError, ScelleError, OSError):
                _log.exception("the hourly audit checkpoint failed; trying again later")
            finally:
                connection.close()
            if stop.wait(CHECKPOINT_POLL_SECONDS):
                return

    thread = threading.Thread(target=run, name="audit-checkpoints", daemon=True)
    thread.start()
    return thread


def serve(
    host: str,
    port: int,
    *,
    threads: int,
    ready: Callable[[str], None],
    clock: Clock = system_clock,
) -> None:
    """Serve the platform with cheroot until interrupted; `ready` gets the URL once bound.

    cheroot hands each request to a worker thread that reads the body from the
    socket itself, so a deposit's chunk streams to its file as it arrives
    (waitress, before, read every body on one thread into a temporary file).
    """
    from cheroot import wsgi

    from scelle.platform.wsgi import application

    server = wsgi.Server(
        (host, port),
        application,
        numthreads=threads,
        server_name="Scelle",
        # The listen backlog: many companies may connect in the same second.
        request_queue_size=BACKLOG,
        timeout=SOCKET_TIMEOUT,
    )
    # No limit on a request's body here: tus chunks stream to disk whatever their
    # size, and the JSON API has Django's own limit (DATA_UPLOAD_MAX_MEMORY_SIZE).
    server.max_request_body_size = 0
    server.prepare()
    if os.name != "nt" and server.socket is not None:
        # cheroot sets this for a fixed port only; with it on the listener, every
        # accepted connection carries it too, and a server restarted after a crash
        # may bind the same port while the dead one's connections wind down.
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    bound = server.bind_addr
    assert isinstance(bound, tuple)
    shown = f"[{host}]" if ":" in host else host
    stop = threading.Event()
    start_checkpoints(clock, stop)
    ready(f"http://{shown}:{bound[1]}")
    try:
        server.serve()
    finally:
        stop.set()
        server.stop()
