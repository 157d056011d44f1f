"""A real platform for end-to-end tests: `scelle serve` in a subprocess on 127.0.0.1,
on SQLite in a temporary folder or on a fresh PostgreSQL database."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from scelle.core.clock import TEST_CLOCK_VARIABLE, shifted_clock

POSTGRES_SERVER = os.environ.get("SCELLE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
START_TIMEOUT = 90.0


def postgres_admin_url() -> str:
    """The server's maintenance database, or a skip that says PostgreSQL is not here."""
    import psycopg

    url = f"{POSTGRES_SERVER}/postgres"
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        pytest.skip(
            f"PostgreSQL is not reachable at {POSTGRES_SERVER} ({str(error).strip()}): "
            "the PostgreSQL runs of these tests are skipped"
        )
    return url


@dataclass
class Platform:
    """A running platform and how to run `scelle admin` against the same data."""

    url: str
    data: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    database: str | None = None
    """The PostgreSQL database's name, None on SQLite."""
    python: str = sys.executable
    """The Python whose `scelle` serves (an installed wheel's, in the wheel test)."""
    server: str = POSTGRES_SERVER
    """The PostgreSQL server that holds `database`."""

    @property
    def clock_file(self) -> Path:
        """The seconds the server's and the workstations' clocks are moved by."""
        return Path(self.env[TEST_CLOCK_VARIABLE])

    def pass_deadline(self, deadline: dt.datetime, *, by: float = 1.0) -> None:
        """Move the platform's clock, and the workstations' (same file), `by` seconds past
        `deadline`, instead of waiting for it. Clocks never go back."""
        moved = shifted_clock(self.clock_file)() - dt.datetime.now(dt.UTC)
        wanted = (deadline - dt.datetime.now(dt.UTC)).total_seconds() + by
        if wanted > moved.total_seconds():
            written = self.clock_file.with_suffix(".new")
            written.write_text(f"{wanted:.3f}", encoding="ascii")
            written.replace(self.clock_file)

    def query(self, sql: str) -> list[tuple[object, ...]]:
        """Read the platform's database directly, as an operator could."""
        if self.database is None:
            import sqlite3

            with contextlib.closing(sqlite3.connect(self.data / "scelle.sqlite3")) as db:
                return list(db.execute(sql))
        import psycopg

        with psycopg.connect(f"{self.server}/{self.database}") as db:
            return list(db.execute(sql))

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> None:
        """Change the platform's database directly, as a hostile operator could
        (the triggers that refuse updates are the operator's to drop)."""
        if self.database is None:
            import sqlite3

            with contextlib.closing(sqlite3.connect(self.data / "scelle.sqlite3")) as db:
                db.execute(sql.replace("%s", "?"), params)
                db.commit()
            return
        import psycopg

        with psycopg.connect(f"{self.server}/{self.database}") as db:
            db.execute(sql, params)

    def dump(self) -> bytes:
        """The whole database as bytes: the SQLite file, or pg_dump's output."""
        if self.database is None:
            return b"".join(
                path.read_bytes() for path in self.data.glob("scelle.sqlite3*") if path.is_file()
            )
        return subprocess.run(
            ["pg_dump", f"{self.server}/{self.database}"],
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as in a crash."""
        self.process.kill()
        self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()

    def restart(self) -> None:
        """Start again on the same data and the same port."""
        port = self.url.rsplit(":", 1)[1]
        self.process, url = _start(self.data, self.env, port=port, python=self.python)
        assert url == self.url

    def admin_all(self, *commands: tuple[str, ...]) -> None:
        """Several `scelle admin` commands, run by the command's own `run` one after the
        other in one process: the same code as `admin`, Python and Django started once."""
        program = (
            "import json, sys\n"
            "from scelle.cli.main import run\n"
            "for args in json.loads(sys.argv[1]):\n"
            "    if run(['admin', *args]) != 0:\n"
            "        sys.exit('scelle admin ' + ' '.join(args) + ' failed')\n"
        )
        listed = json.dumps([[*command, "--data", str(self.data)] for command in commands])
        result = subprocess.run(
            [self.python, "-c", program, listed],
            env=self.env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise AssertionError(result.stderr)

    def admin(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.python, "-m", "scelle.cli", "admin", *args, "--data", str(self.data)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"scelle admin {' '.join(args)} failed: {result.stderr}")
        return result


def _server_env(database_url: str | None, clock_file: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCELLE_", "DJANGO_"))}
    env["SCELLE_LANG"] = "en"
    if clock_file is not None:
        env[TEST_CLOCK_VARIABLE] = str(clock_file)
    if database_url:
        env["SCELLE_DATABASE_URL"] = database_url
    return env


def _drain(stream: IO[bytes], seen: list[str]) -> None:
    try:
        for line in iter(stream.readline, b""):
            seen.append(line.decode("utf-8", "replace"))
            del seen[:-200]
    except (ValueError, OSError):  # the test closed the pipe: the server is gone
        return


_SAID: dict[int, tuple[threading.Thread, list[str]]] = {}


def said(process: subprocess.Popen[bytes]) -> str:
    """What a server started by `_start` wrote on its standard error (its last 200 lines),
    all of it once the server has exited."""
    reader, seen = _SAID[process.pid]
    if process.poll() is not None:
        reader.join(timeout=10)
    return "".join(seen)


def _start(
    data: Path,
    env: dict[str, str],
    *,
    port: str = "0",
    python: str = sys.executable,
    options: Sequence[str] = (),
    prefix: Sequence[str] = (),
) -> tuple[subprocess.Popen[bytes], str]:
    """`scelle serve` on `data`, started through `prefix` (`ip netns exec NAME`: in a host
    of the test's own); its process and URL once it answers."""
    process = subprocess.Popen(
        [
            *prefix,
            python,
            "-m",
            "scelle.cli",
            "serve",
            "--data",
            str(data),
            "--port",
            port,
            *options,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + START_TIMEOUT
    seen = []
    while time.monotonic() < deadline:
        line = process.stderr.readline().decode("utf-8", "replace")
        if not line:
            break
        seen.append(line)
        found = re.search(r"running on (http://\S+)", line)
        if found:
            url = found.group(1)
            # The ready line comes once the socket is bound; the health route
            # answering proves the application behind it is loaded.
            health = httpx.get(f"{url}/api/health", timeout=10)
            if health.status_code != 200:
                process.kill()
                process.wait()
                raise AssertionError(f"scelle serve answers {health.status_code}: {health.text}")
            assert health.json() == {"status": "ok"}
            # Keep reading what it says: a full pipe would block the server's next log line.
            reader = threading.Thread(target=_drain, args=(process.stderr, seen), daemon=True)
            reader.start()
            _SAID[process.pid] = (reader, seen)
            return process, url
    process.kill()
    raise AssertionError("scelle serve did not start:\n" + "".join(seen))


def _stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as a service manager stops the server; its exit status (killed after 30 s)."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()
    finally:
        said(process)  # read to its end
        if process.stderr is not None:
            process.stderr.close()


BOTH_DATABASES = pytest.mark.parametrize("platform", ["sqlite", "postgresql"], indirect=True)
"""For the journeys whose outcome depends on the database (what it holds, durability,
several processes): they run on SQLite and on PostgreSQL. The others run on SQLite, and
the platform's own tests run again on PostgreSQL (scripts/test)."""


@pytest.fixture(params=["sqlite"])
def platform(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Platform]:
    """`scelle serve` on a fresh database (SQLite unless the test asks for PostgreSQL)."""
    database_url = None
    admin_url = None
    name = f"scelle_e2e_{secrets.token_hex(4)}"
    if request.param == "postgresql":
        import psycopg

        admin_url = postgres_admin_url()
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')  # name is ours: hex only
        database_url = f"{POSTGRES_SERVER}/{name}"
    clock_file = tmp_path / "clock-seconds"
    env = _server_env(database_url, clock_file)
    # The workstations of the test (the command in this process, assistants it starts)
    # read the same moved clock as the server.
    monkeypatch.setenv(TEST_CLOCK_VARIABLE, str(clock_file))
    data = tmp_path / "scelle-data"
    process, url = _start(data, env)
    running = Platform(url, data, env, process, name if database_url else None)
    try:
        yield running
    finally:
        if running.process.returncode is None:
            _stop(running.process)
        if admin_url is not None:
            import psycopg

            with psycopg.connect(admin_url, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


PASSWORD = "Mot-de-passe-Agent-2026!"


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    """The users' password, in a file as `--password-file` reads it."""
    path = tmp_path / "password.txt"
    path.write_text(PASSWORD + "\n", encoding="utf-8")
    return path
