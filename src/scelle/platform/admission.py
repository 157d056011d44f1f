"""Who gets the next of Django's threads: classes, fair turns between clients, shedding.

On deadline day one laptop must not stop the platform. Every request that needs
a thread (Django's pages and API, a tus PATCH's checks) asks this gate first:

- requests come in classes: health goes first; the deposits' and assistants' own
  requests, logins (and what the login page needs) and logged-in work then share
  the threads 4:2:1 when all of them wait (`SHARES`), so none starves another;
  anonymous work goes last;
- each class may start only while enough threads stay free for the classes
  above it (`Limits.reserve`): anonymous work never holds more than half the
  threads, and the last thread is health's alone;
- within a class, clients take turns (round robin over the clients waiting, a
  client being an IPv4 address or an IPv6 /64), and one client holds at most
  `client_threads` threads of a class at once: a flood from one address waits
  behind its own requests, not in front of everybody else's;
- a request that waited `max_wait` seconds, or that finds its client's queue
  (`client_queue`) or its class's (`class_queue`) full, or whose client asks
  faster than its class's rate (`rates`: anonymous and login requests only), is
  shed: the gateway answers 503 with Retry-After;
- a request whose client went away while it waited is dropped: the gateway
  cancels its wait (see `gateway._in_pool`).

Nothing here knows HTTP or Django: the gateway classes requests and names
clients; this module only counts.
"""

from __future__ import annotations

import asyncio
import collections
import enum
from dataclasses import dataclass, field

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter


class Kind(enum.IntEnum):
    """A request's class, the most urgent first."""

    HEALTH = 0
    DEPOSIT = 1
    """A company's upload and deposit, an assistant's poll, heartbeat and report."""
    LOGIN = 2
    """Logging in, and the static files the login page needs."""
    MEMBER = 3
    """Anything else that carries a session or a token."""
    ANONYMOUS = 4


SHARES = {Kind.DEPOSIT: 4, Kind.LOGIN: 2, Kind.MEMBER: 1}
"""How the classes between health and anonymous work share threads when all wait."""


class Shed(Exception):
    """The platform is too busy for this request now: the gateway answers 503."""

    def __init__(self, *, waited: bool = False) -> None:
        super().__init__("shed")
        self.waited = waited
        """The request waited its time in the queue (else it was refused on arrival)."""


@dataclass(frozen=True)
class Limits:
    """How many threads, and how they are shared (settings: SCELLE_THREADS, SCELLE_CLIENT_*,
    SCELLE_QUEUE_SECONDS)."""

    threads: int
    """Django's threads: requests worked on at once."""
    client_threads: int = 2
    """Threads one client may hold at once in one class (an office behind a NAT is
    one client: its people's clicks rarely overlap by more than this)."""
    client_queue: int = 64
    """Requests of one client that may wait in one class; more are shed at once."""
    class_queue: int = 4096
    """Requests that may wait in one class, all clients together."""
    max_wait: float = 5.0
    """Seconds a request may wait for a thread before it is shed."""
    rates: tuple[tuple[Kind, str], ...] = ((Kind.ANONYMOUS, "20/second"), (Kind.LOGIN, "60/second"))
    """Requests one client may send in a class (`limits`' notation): an anonymous
    request is cheap, a flood of them from one address is not."""

    def reserve(self, kind: Kind) -> int:
        """Threads a class must leave free for the classes above it."""
        wanted = {
            Kind.HEALTH: 0,
            # Equal for the shared classes: a higher reserve for one would let the others
            # fill the threads it may not take, and starve it whatever the shares say.
            Kind.DEPOSIT: 1,
            Kind.LOGIN: 1,
            Kind.MEMBER: 1,
            Kind.ANONYMOUS: self.threads // 2,
        }[kind]
        return min(wanted, self.threads - 1)


@dataclass(frozen=True)
class Ticket:
    """A thread held by a client for a request of a class; give it back with `leave`."""

    kind: Kind
    client: str


@dataclass
class _Class:
    waiting: collections.OrderedDict[str, collections.deque[asyncio.Future[Ticket]]] = field(
        default_factory=collections.OrderedDict
    )
    """Each client's waiting requests, clients in the order of their next turn."""
    count: int = 0


class Admission:
    """The gate in front of Django's threads (one per server process, on its event loop)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.busy = 0
        self._running: collections.Counter[tuple[Kind, str]] = collections.Counter()
        self._classes = {kind: _Class() for kind in Kind}
        self._rates: dict[Kind, RateLimitItem] = {kind: parse(r) for kind, r in limits.rates}
        self._counter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._pass = dict.fromkeys(SHARES, 0.0)
        """Each shared class's stride pass: how far along its share it has been served."""
        self._virtual = 0.0
        """The pass of the last shared request started: a class that was idle starts
        from here, with no credit saved up while nobody of it asked."""

    def waiting(self, kind: Kind | None = None) -> int:
        """Requests waiting, of one class or of all."""
        kinds = list(Kind) if kind is None else [kind]
        return sum(self._classes[k].count for k in kinds)

    async def enter(self, kind: Kind, client: str) -> Ticket:
        """Wait for a thread; `Shed` when the wait would be too long. Cancelling the wait
        (the client went away) takes the request out of the queue."""
        rate = self._rates.get(kind)
        if rate is not None and not self._counter.hit(rate, client):
            raise Shed
        queue = self._classes[kind]
        mine = queue.waiting.setdefault(client, collections.deque())
        if len(mine) >= self.limits.client_queue or queue.count >= self.limits.class_queue:
            if not mine:
                del queue.waiting[client]
            raise Shed
        turn: asyncio.Future[Ticket] = asyncio.get_running_loop().create_future()
        if kind in SHARES and not queue.count:
            self._pass[kind] = max(self._pass[kind], self._virtual)
        mine.append(turn)
        queue.count += 1
        self._dispatch()  # at once when a thread is free and nobody is ahead
        if turn.done():
            return turn.result()
        try:
            async with asyncio.timeout(self.limits.max_wait):
                return await asyncio.shield(turn)
        except TimeoutError:
            if turn.done():  # given a thread as the time ran out: take it
                return turn.result()
            self._forget(kind, client, turn)
            raise Shed(waited=True) from None
        except asyncio.CancelledError:
            if turn.done():  # given a thread as the client left: give it back
                self.leave(turn.result())
            else:
                self._forget(kind, client, turn)
            raise

    def leave(self, ticket: Ticket) -> None:
        """Give a thread back; the next request in line gets it."""
        self.busy -= 1
        key = (ticket.kind, ticket.client)
        self._running[key] -= 1
        if not self._running[key]:
            del self._running[key]
        self._dispatch()

    def _may_start(self, ticket: Ticket) -> bool:
        return (
            self.busy + self.limits.reserve(ticket.kind) < self.limits.threads
            and self._running[(ticket.kind, ticket.client)] < self.limits.client_threads
        )

    def _start(self, ticket: Ticket) -> None:
        self.busy += 1
        self._running[(ticket.kind, ticket.client)] += 1

    def _dispatch(self) -> None:
        """Give free threads to waiting requests, clients of a class in turn."""
        while (chosen := self._next()) is not None:
            kind, client = chosen
            queue = self._classes[kind]
            mine = queue.waiting.pop(client)
            turn = mine.popleft()
            queue.count -= 1
            if mine:
                queue.waiting[client] = mine  # back of the line
            if kind in SHARES:
                self._virtual = self._pass[kind]
                self._pass[kind] += 1 / SHARES[kind]
            ticket = Ticket(kind, client)
            self._start(ticket)
            turn.set_result(ticket)

    def _next(self) -> tuple[Kind, str] | None:
        """The class and client whose request goes next: health first; then deposits,
        logins and logged-in work, each in proportion to its share (stride scheduling:
        the class furthest behind its share goes, ties in class order), so that a rush
        of uploads never starves logins nor the reverse; anonymous work last."""
        ready: list[tuple[Kind, str]] = []
        for kind in Kind:
            queue = self._classes[kind]
            if not queue.count or self.busy + self.limits.reserve(kind) >= self.limits.threads:
                continue
            client = next((c for c in queue.waiting if self._may_start(Ticket(kind, c))), None)
            if client is None:
                continue  # every waiting client of this class holds its share
            if kind is Kind.HEALTH:
                return kind, client
            ready.append((kind, client))
        shared = [entry for entry in ready if entry[0] in SHARES]
        if shared:
            return min(shared, key=lambda entry: (self._pass[entry[0]], entry[0]))
        return ready[0] if ready else None

    def _forget(self, kind: Kind, client: str, turn: asyncio.Future[Ticket]) -> None:
        queue = self._classes[kind]
        mine = queue.waiting.get(client)
        if mine is not None and turn in mine:
            mine.remove(turn)
            queue.count -= 1
            if not mine:
                del queue.waiting[client]
