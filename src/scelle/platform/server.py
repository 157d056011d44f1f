"""Starting the platform: settings from the environment, migrations, keys, WSGI server.

`scelle serve` and `scelle admin` call these; nothing here is needed when a
WSGI server of one's own runs `scelle.platform.wsgi` (after `prepare`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from scelle.core.clock import Clock, system_clock

DEFAULT_THREADS = 8


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


def serve(host: str, port: int, *, threads: int, ready: Callable[[str], None]) -> None:
    """Serve the platform with waitress until interrupted; `ready` gets the URL once bound."""
    from waitress import create_server

    from scelle.platform.wsgi import application

    server = create_server(
        application,
        host=host,
        port=port,
        threads=threads,
        ident="Scelle",
        # Deposits (next issue) are large: stream request bodies to disk, not memory.
        inbuf_overflow=1 << 20,
        recv_bytes=1 << 18,
        max_request_body_size=1 << 30,
    )
    shown = f"[{host}]" if ":" in host else host
    ready(f"http://{shown}:{server.effective_port}")
    try:
        server.run()
    finally:
        server.close()
