"""Starting the platform: settings from the environment, migrations, keys, WSGI server.

`scelle serve` and `scelle admin` call these; nothing here is needed when a
WSGI server of one's own runs `scelle.platform.wsgi` (after `prepare`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from scelle.core.clock import TEST_CLOCK_VARIABLE, Clock, system_clock
from scelle.core.errors import N_, InvalidInputError

BACKLOG = 1024
"""Connections the kernel queues before they are accepted: many companies may
connect in the same second."""
KEEP_ALIVE_SECONDS = 10
"""A connection that sends no complete request head for this long is closed."""
MAX_HEAD_BYTES = 16 << 10
"""The largest request line and headers taken."""
HOUSEKEEPING_POLL_SECONDS = 60
"""How often the server looks whether the hourly audit checkpoint is due."""
SWEEP_SECONDS = 600
"""How often the server sweeps the uploads that will never become deposits."""

_log = logging.getLogger("scelle.platform")


def folders(data_dir: Path | None) -> tuple[Path, Path]:
    """(data folder, keys folder) as the settings will read them, read before they are:
    loading the settings makes the folders."""
    data = data_dir or Path(os.environ.get("SCELLE_DATA_DIR", "").strip() or "scelle-data")
    data = data.expanduser().resolve()
    keys = os.environ.get("SCELLE_KEYS_DIR", "").strip()
    return data, (Path(keys).expanduser().resolve() if keys else data / "platform-keys")


def exists(data_dir: Path | None) -> bool:
    """Whether a platform was created there: its CA certificate is in its keys folder."""
    from scelle.platform.keypairs.authority import CA_FILES  # reads no setting on import

    return (folders(data_dir)[1] / CA_FILES[1]).is_file()


def configure(data_dir: Path | None) -> None:
    """Load Django with the platform's settings; `data_dir` overrides SCELLE_DATA_DIR."""
    if data_dir is not None:
        os.environ["SCELLE_DATA_DIR"] = str(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "scelle.platform.settings"
    import django

    django.setup()


def prepare(clock: Clock = system_clock) -> bool:
    """Bring the database schema up to date, create the platform's keys on the first
    start, and launch the test tender when there is none; True when the keys were created
    now."""
    from django.core.management import call_command

    from scelle.platform.keypairs.authority import ensure_platform_keys
    from scelle.platform.tenders.testing import ensure_test_tender

    call_command("migrate", interactive=False, verbosity=0)
    created = ensure_platform_keys(clock)
    ensure_test_tender(now=clock())
    return created


def start_housekeeping(clock: Clock, stop: threading.Event) -> threading.Thread:
    """While the server runs: sign an audit checkpoint every hour (audit.anchors), and
    every `SWEEP_SECONDS` sweep the uploads that will never become deposits and fail the
    remote jobs no assistant took (or reported), sweep the test deposits whose time is up,
    renew the test tender before its deadline and queue the mails time brings (key pairs
    expiring, deadlines passed); every round, send the mails waiting."""
    from django.db import DatabaseError, connection

    from scelle.core.errors import ScelleError
    from scelle.platform.assistants.services import expire_jobs
    from scelle.platform.audit.anchors import checkpoint_if_due
    from scelle.platform.deposits.services import sweep_test_deposits, sweep_uploads
    from scelle.platform.mail.services import notify_due, send_pending
    from scelle.platform.tenders.testing import ensure_test_tender

    def run() -> None:
        swept_at = -float("inf")
        while True:
            try:
                checkpoint_if_due(now=clock())
                if time.monotonic() - swept_at >= SWEEP_SECONDS:
                    swept_at = time.monotonic()
                    report = sweep_uploads(now=clock())
                    if report.idle or report.closed or report.orphans:
                        _log.warning("swept uploads: %s", report)
                    if expired := expire_jobs(now=clock()):
                        _log.warning("%d remote jobs expired", expired)
                    if tried := sweep_test_deposits(now=clock()):
                        _log.info("swept %d test deposits", tried)
                    ensure_test_tender(now=clock())
                    notify_due(now=clock())
                send_pending(now=clock())
            except (DatabaseError, ScelleError, OSError):
                _log.exception("housekeeping failed; trying again later")
            finally:
                connection.close()
            if stop.wait(HOUSEKEEPING_POLL_SECONDS):
                return

    thread = threading.Thread(target=run, name="housekeeping", daemon=True)
    thread.start()
    return thread


def serve(
    host: str,
    port: int,
    *,
    threads: int,
    ready: Callable[[str], None],
    clock: Clock = system_clock,
    processes: int = 1,
) -> None:
    """Serve the platform until interrupted (SIGINT, SIGTERM); `ready` gets the URL once
    bound. The event loop holds the connections; `threads` threads run Django (gateway).

    With `processes` above 1 (POSIX only), that many processes share the listening
    socket, each with its event loop and threads: Django's CPU work then uses every
    core. The first one also does the housekeeping; one that dies is started again.
    """
    _raise_open_files_limit()
    _warm()  # before the fork: every serving process starts warm
    listener = _listen(host, port)
    bound = listener.getsockname()
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound[1]}"
    shared: str | None = None
    try:
        shared = _start_metrics(processes)
        if processes <= 1:
            _serve_here(listener, threads=threads, clock=clock, housekeeping=True,
                        ready=lambda: ready(url))  # fmt: skip
        else:
            _supervise(listener, processes, threads=threads, clock=clock,
                       ready=lambda: ready(url), shared=shared)  # fmt: skip
    finally:
        listener.close()
        if shared is not None:
            shutil.rmtree(shared, ignore_errors=True)


def _warm() -> None:
    """Load what a serving process's first page would, before it serves: the URL patterns
    and their views, every template of the platform's own apps (compiled once, by the
    cached loader) and the catalogues of its languages. A cold process takes about
    300 ms more for its first page, and the first users after a start all wait on it."""
    from django.apps import apps
    from django.conf import settings
    from django.template import engines
    from django.urls import get_resolver
    from django.utils import translation

    get_resolver().url_patterns  # noqa: B018 - imports every view
    engine = engines["django"]
    for app in apps.get_app_configs():
        folder = Path(app.path) / "templates"
        if app.name.startswith("scelle.") and folder.is_dir():
            for template in sorted(folder.rglob("*.html")):
                engine.get_template(template.relative_to(folder).as_posix())
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            translation.gettext("Tenders")


def _start_metrics(processes: int) -> str | None:
    """Serve the metrics on SCELLE_METRICS_ADDRESS (if set) from this process; with
    several serving processes, the folder where they write their values."""
    from django.conf import settings

    address = settings.SCELLE_METRICS_ADDRESS
    if not address:
        return None
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInputError(
            N_("SCELLE_METRICS_ADDRESS must be host:port (a private address): {address}"),
            address=address,
        )
    shared = None
    if processes > 1:  # before prometheus_client is first imported (scelle.platform.metrics)
        shared = tempfile.mkdtemp(prefix="scelle-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = shared
    from scelle.platform.metrics import serve_metrics

    try:
        serve_metrics(address, shared=shared)
    except OSError as error:
        raise InvalidInputError(
            N_("cannot serve the metrics on {address}: {error}"), address=address, error=error
        ) from None
    return shared


RESTART_PAUSE_SECONDS = 1.0
"""The least time between two starts of the same serving process (a crash loop waits)."""


def _supervise(
    listener: socket.socket,
    processes: int,
    *,
    threads: int,
    clock: Clock,
    ready: Callable[[], None],
    shared: str | None = None,
) -> None:
    """Fork `processes` serving processes on `listener` and keep them running until
    SIGINT or SIGTERM, which goes on to each of them; returns once all have ended.
    `shared`: the folder of their metrics, where one that ended is marked so.

    Long because the signal handler, the forks and the restarts share the table of the
    children, and read best together.
    """
    if not hasattr(os, "fork"):
        raise InvalidInputError(N_("several serving processes need a POSIX system (fork)"))
    from django.db import connections

    connections.close_all()  # no connection may be shared with the children
    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        stopping.set()
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def start(index: int) -> None:
        pid = fork_child(index)
        children[pid] = (index, time.monotonic())
        if stopping.is_set():  # the signal came while this one was being forked
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def fork_child(index: int) -> int:
        pid = os.fork()
        if pid == 0:  # the child: serve, then leave without running the parent's cleanup
            status = 1
            try:
                for name in ("SIGINT", "SIGTERM"):
                    signal.signal(getattr(signal, name), signal.SIG_DFL)
                _serve_here(listener, threads=threads, clock=clock, housekeeping=index == 0,
                            ready=lambda: None)  # fmt: skip
                status = 0
            except Exception:  # noqa: BLE001 - logged; os._exit below, whatever happened
                _log.exception("serving process %d failed", index)
            finally:
                os._exit(status)
        return pid

    children: dict[int, tuple[int, float]] = {}
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for index in range(processes):
            start(index)
        ready()
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            if pid not in children:
                continue
            index, started = children.pop(pid)
            if shared is not None:
                from scelle.platform.metrics import process_ended

                process_ended(pid, shared)
            if stopping.is_set():
                continue
            code = os.waitstatus_to_exitcode(status)
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            _log.error("serving process %d ended (%s): starting it again", index, how)
            time.sleep(max(0.0, started + RESTART_PAUSE_SECONDS - time.monotonic()))
            if not stopping.is_set():
                start(index)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve_here(
    listener: socket.socket,
    *,
    threads: int,
    clock: Clock,
    housekeeping: bool,
    ready: Callable[[], None],
) -> None:
    """One serving process: hypercorn's event loop on `listener`, Django in `threads`
    threads, until SIGINT or SIGTERM.

    Long because it wires the server's limits and its event loop in one place, in order.
    """
    from django.conf import settings
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config
    from hypercorn.typing import ASGIFramework

    from scelle.platform import pipelining
    from scelle.platform.admission import Kind, Limits
    from scelle.platform.gateway import Gateway, Proxies
    from scelle.platform.wsgi import application

    pipelining.install()
    if os.environ.get(TEST_CLOCK_VARIABLE):
        _log.warning("%s is set: this platform's clock is moved (tests only)", TEST_CLOCK_VARIABLE)
    limits = Limits(
        threads=threads,
        client_threads=settings.SCELLE_CLIENT_THREADS,
        client_queue=settings.SCELLE_CLIENT_QUEUE,
        max_wait=float(settings.SCELLE_QUEUE_SECONDS),
        rates=(
            (Kind.ANONYMOUS, _rate("SCELLE_ANONYMOUS_RATE", settings.SCELLE_ANONYMOUS_RATE)),
            (Kind.LOGIN, _rate("SCELLE_LOGIN_RATE", settings.SCELLE_LOGIN_RATE)),
        ),
    )
    proxies = Proxies(tuple(_network(part) for part in settings.SCELLE_TRUSTED_PROXIES))
    config = Config()
    # hypercorn gets a socket of its own on the same listening socket, and closes it.
    config.bind = [f"fd://{os.dup(listener.fileno())}"]
    config.backlog = BACKLOG
    # Until a request's head has arrived, and between requests: a connection that
    # sends nothing (or its headers a byte at a time) is closed after this.
    config.keep_alive_timeout = KEEP_ALIVE_SECONDS
    config.h11_max_incomplete_size = MAX_HEAD_BYTES
    config.include_server_header = False
    config.accesslog = None
    config.errorlog = _log
    stop = threading.Event()
    if housekeeping:
        start_housekeeping(clock, stop)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        interrupted = asyncio.Event()
        for name in ("SIGINT", "SIGTERM"):
            with contextlib.suppress(NotImplementedError, AttributeError):
                loop.add_signal_handler(getattr(signal, name), interrupted.set)
        # The socket listens already: a client may connect as soon as it reads this.
        loop.call_soon(ready)
        gateway = cast("ASGIFramework", Gateway(application, limits=limits, proxies=proxies))
        await hypercorn_serve(gateway, config, shutdown_trigger=interrupted.wait)

    try:
        asyncio.run(run())
    finally:
        stop.set()


def _rate(name: str, text: str) -> str:
    from limits import parse

    try:
        parse(text)
    except ValueError:
        raise InvalidInputError(
            N_("{name} must read like 20/second, not {text!r}"), name=name, text=text
        ) from None
    return text


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidInputError(
            N_("SCELLE_TRUSTED_PROXIES: {text!r} is not an address or a network"), text=text
        ) from None


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that port 0 gives a port we can announce."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    if os.name != "nt":
        # A server restarted after a crash may bind the same port while the dead
        # one's connections wind down.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise InvalidInputError(
            N_("cannot listen on {host}:{port}: {problem}"),
            host=host,
            port=port,
            problem=error.strerror or str(error),
        ) from None
    listener.listen(BACKLOG)
    listener.set_inheritable(True)
    return listener


def _raise_open_files_limit() -> None:
    """Each connection is a file descriptor: allow as many as the system lets us."""
    try:
        import resource
    except ImportError:  # Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 16
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
