"""`scelle serve --processes N`: N serving processes share the port, so that Django's CPU
work uses every core; one that dies is started again, and SIGTERM stops them all."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time
from collections.abc import Set as AbstractSet
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import _server_env, _start, _stop, said

pytestmark = pytest.mark.slow


def _children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(part) for part in text.split()}


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _busy(url: str, requests: int) -> None:
    """`requests` pages (the login page renders a template) from 8 clients at once."""

    def ask(_: int) -> int:
        return httpx.get(f"{url}/connexion/", timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(ask, range(requests))) == {200}


def _children_soon(pid: int, count: int, without: AbstractSet[int] = frozenset()) -> set[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = _children(pid) - without
        if len(found) == count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{pid} has children {_children(pid)}")


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_two_processes_share_the_port_one_killed_comes_back_and_sigterm_ends_both(
    tmp_path: Path,
) -> None:
    process, url = _start(tmp_path / "data", _server_env(None), options=["--processes", "2"])
    try:
        first = _children_soon(process.pid, 2)
        before = {pid: _cpu_ticks(pid) for pid in first}
        _busy(url, 200)
        worked = {pid: _cpu_ticks(pid) - before[pid] for pid in first}
        assert all(ticks > 0 for ticks in worked.values()), worked  # both took requests

        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        replaced = _children_soon(process.pid, 1, without=first)
        assert _children(process.pid) == (first - {victim}) | replaced
        _busy(url, 20)
        assert process.poll() is None
    finally:
        status = _stop(process)
    assert status == 0
    assert "(killed by signal 9): starting it again" in said(process)
    assert not Path(f"/proc/{process.pid}").exists() or not _children(process.pid)
