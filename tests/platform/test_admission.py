"""Admission in front of Django's threads: classes in order, clients in turn, a thread
left for health, shedding, and a departed client's wait taken out of the queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from scelle.platform.admission import Admission, Kind, Limits, Shed, Ticket


def _run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


async def _settle() -> None:
    """Let the tasks whose turn came finish their wait (a few steps of the loop)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def _waiting(admission: Admission, kind: Kind, client: str) -> asyncio.Task[Ticket]:
    task = asyncio.ensure_future(admission.enter(kind, client))
    await _settle()
    return task


def test_clients_of_a_class_take_turns_whatever_one_of_them_sends():
    async def test() -> None:
        admission = Admission(Limits(threads=4, client_threads=1))
        first = await admission.enter(Kind.MEMBER, "flood")
        # The flooder queues ten more before a company asks once.
        flood = [await _waiting(admission, Kind.MEMBER, "flood") for _ in range(10)]
        company = await _waiting(admission, Kind.MEMBER, "company")
        assert company.done()  # a thread was free, and the flooder holds its share
        admission.leave(first)
        await _settle()
        assert sum(task.done() for task in flood) == 1
        admission.leave(company.result())
        other = await _waiting(admission, Kind.MEMBER, "other")
        assert other.done()
        for task in flood:
            task.cancel()

    _run(test)


def test_anonymous_work_leaves_half_the_threads_and_the_last_is_healths():
    async def test() -> None:
        admission = Admission(Limits(threads=8, client_threads=8))
        anonymous = [await _waiting(admission, Kind.ANONYMOUS, f"a{i}") for i in range(8)]
        assert sum(task.done() for task in anonymous) == 4
        members = [await _waiting(admission, Kind.MEMBER, f"m{i}") for i in range(8)]
        assert sum(task.done() for task in members) == 3  # one left for health
        deposits = [await _waiting(admission, Kind.DEPOSIT, f"d{i}") for i in range(3)]
        assert not any(task.done() for task in deposits)
        health = await _waiting(admission, Kind.HEALTH, "probe")
        assert health.done() and admission.busy == 8
        # Health's thread, given back, stays free for health.
        admission.leave(health.result())
        await _settle()
        assert admission.busy == 7
        # The next goes to the shared classes (deposits first: they have had no share
        # yet), never to the anonymous requests waiting.
        admission.leave(anonymous[0].result())
        await _settle()
        assert sum(task.done() for task in deposits) == 1
        assert sum(task.done() for task in anonymous) == 4
        for task in anonymous + members + deposits:
            task.cancel()

    _run(test)


def test_a_request_that_waits_too_long_is_shed_and_leaves_the_queue():
    async def test() -> None:
        admission = Admission(Limits(threads=1, max_wait=0.05))
        held = await admission.enter(Kind.MEMBER, "a")
        with pytest.raises(Shed):
            await admission.enter(Kind.MEMBER, "b")
        assert admission.waiting() == 0
        admission.leave(held)
        assert admission.busy == 0

    _run(test)


def test_a_full_client_queue_is_shed_at_once():
    async def test() -> None:
        admission = Admission(Limits(threads=1, client_queue=3))
        held = await admission.enter(Kind.ANONYMOUS, "a")
        queued = [await _waiting(admission, Kind.ANONYMOUS, "a") for _ in range(3)]
        with pytest.raises(Shed):
            await admission.enter(Kind.ANONYMOUS, "a")
        assert not (await _waiting(admission, Kind.ANONYMOUS, "b")).done()  # others queue
        for task in queued:
            task.cancel()
        admission.leave(held)

    _run(test)


def test_a_departed_clients_wait_is_cancelled_and_its_thread_goes_to_the_next():
    async def test() -> None:
        admission = Admission(Limits(threads=1))
        held = await admission.enter(Kind.LOGIN, "a")
        gone = await _waiting(admission, Kind.LOGIN, "b")
        next_one = await _waiting(admission, Kind.LOGIN, "c")
        gone.cancel()
        await _settle()
        assert admission.waiting(Kind.LOGIN) == 1
        admission.leave(held)
        await _settle()
        assert next_one.done() and admission.busy == 1
        admission.leave(next_one.result())
        assert admission.busy == 0

    _run(test)


def test_one_thread_serves_every_class_in_order():
    async def test() -> None:
        admission = Admission(Limits(threads=1))
        held = await admission.enter(Kind.ANONYMOUS, "a")
        anonymous = await _waiting(admission, Kind.ANONYMOUS, "b")
        login = await _waiting(admission, Kind.LOGIN, "c")
        admission.leave(held)
        await _settle()
        assert login.done() and not anonymous.done()
        admission.leave(login.result())
        await _settle()
        assert anonymous.done()

    _run(test)


def test_a_client_faster_than_its_class_rate_is_shed_on_arrival_and_others_are_not():
    async def test() -> None:
        admission = Admission(
            Limits(threads=64, client_threads=64, rates=((Kind.LOGIN, "5/minute"),))
        )
        tickets = [await admission.enter(Kind.LOGIN, "office") for _ in range(5)]
        with pytest.raises(Shed) as shed:
            await admission.enter(Kind.LOGIN, "office")
        assert not shed.value.waited
        tickets.append(await admission.enter(Kind.LOGIN, "elsewhere"))
        tickets += [await admission.enter(Kind.MEMBER, "office") for _ in range(10)]  # no rate
        for ticket in tickets:
            admission.leave(ticket)
        assert admission.busy == 0

    _run(test)


def test_a_rush_of_uploads_does_not_starve_logins_nor_logins_uploads():
    async def test() -> None:
        admission = Admission(Limits(threads=2, client_threads=1))
        held = await admission.enter(Kind.DEPOSIT, "company-0")
        uploads = [await _waiting(admission, Kind.DEPOSIT, f"company-{i}") for i in range(1, 50)]
        logins = [await _waiting(admission, Kind.LOGIN, f"person-{i}") for i in range(50)]
        started: list[Ticket] = []
        ticket = held
        for _ in range(21):  # one thread turning over: who gets each turn
            admission.leave(ticket)
            await _settle()
            running = [t for t in uploads + logins if t.done() and t.result() not in started]
            ticket = running[0].result()
            started.append(ticket)
        kinds = [t.kind for t in started]
        # Deposits have four shares to logins' two: both move, neither waits for the other.
        assert 12 <= kinds.count(Kind.DEPOSIT) <= 16 and 5 <= kinds.count(Kind.LOGIN) <= 9
        for task in uploads + logins:
            task.cancel()

    _run(test)
