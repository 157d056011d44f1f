"""Pages under load: 16 logged-in clients at once on the heaviest pages of a busy buyer.

Data: one service with 50 key pairs, 500 tenders (50 launched), one tender with 200
deposits, a company with a deposit on each launched tender (its Mes dépôts), 100 remote
jobs, put in through the platform's services (key pairs, tenders) and its models
(deposits, whose upload path bench/deposit.py measures). A real `scelle serve` on SQLite.

Printed:
  - database queries per page, at a tenth of the data and at all of it (they must not
    grow with the rows; tests/platform/test_page_queries.py fails when they do);
  - for /api/health (the reference, in the same run) and each page: requests per
    second, p50 and p99 latency, the server's CPU per request; first with today's one
    process on core 0 (clients on core 1), then with one process per core
    (`--processes 0`, clients anywhere), then through nginx to two `scelle serve` of one
    process each (bench/front.py, deploy/nginx as shipped: nginx's CPU is counted);
  - each page's p99 with one process per core, and through nginx, over its p99 with one
    process.
Long lists show 50 rows a page, so a page's cost does not grow with the rows.
Target: p99 under 150 ms on this machine.

    python bench/web.py [--seconds 10] [--clients 16]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

import front
from deposit import PASSWORD, cpu_seconds, peak_rss_mib, start

if TYPE_CHECKING:
    from scelle.platform.accounts.models import User

KEY_PAIRS = 50
TENDERS = 500
DEPOSITS = 200
JOBS = 100
LAUNCHED = 50


@dataclass
class Data:
    """What is in the database so far."""

    agent: Any = None
    service: Any = None
    keys: int = 0
    tenders: int = 0
    deposits: int = 0
    busy: str = ""
    """The id of the tender with the deposits."""
    company: Any = None
    """The user of the company whose Mes dépôts is measured: one deposit on each of the
    launched tenders but the busy one, and on the busy one."""
    jobs: int = 0


def populate(fraction: float, state: Data) -> None:
    """Add rows up to `fraction` of the full data set (idempotent between calls)."""

    from scelle.core import authority
    from scelle.core.clock import system_clock
    from scelle.platform.accounts import services as accounts
    from scelle.platform.accounts.models import Organisation, User
    from scelle.platform.deposits.models import Deposit, Envelope
    from scelle.platform.keypairs import services as keypairs
    from scelle.platform.tenders import services as tenders
    from scelle.platform.tenders.models import Tender

    now = system_clock()
    if state.agent is None:
        buyer = accounts.create_organisation("Ville de Rouen", "buyer", now=now)
        service = accounts.create_service(buyer, "Marchés", now=now)
        state.agent = accounts.create_user(
            "acheteur@rouen.fr", buyer, PASSWORD, service=service,
            permissions=("manage_keys", "manage_tenders", "open", "administer"), now=now,
        )  # fmt: skip
        state.service = service
    agent, service = state.agent, state.service
    for index in range(state.keys, int(KEY_PAIRS * fraction)):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        keypairs.publish_key_pair(
            agent, service_id=service.id, designation=f"BI-CLE-{index:03d}",
            role="backup" if index == 0 else "personal",
            csr_pem=authority.build_csr(key, f"Bi-clé {index:03d}"), certificate_pem=None, now=now,
        )  # fmt: skip
    state.keys = int(KEY_PAIRS * fraction)
    deadline = now + dt.timedelta(days=30)
    for index in range(state.tenders, int(TENDERS * fraction)):
        tenders.create_tender(
            agent, service_id=service.id, reference=f"AO-{index:04d}",
            title=f"Marché numéro {index}", deadline=deadline + dt.timedelta(hours=index),
            envelopes=["candidature", "offre"], now=now,
        )  # fmt: skip
        if index < LAUNCHED:
            tenders.launch_tender(agent, f"AO-{index:04d}", ["BI-CLE-001"], now=now)
    state.tenders = int(TENDERS * fraction)
    busy = tenders.tender_for(agent, "AO-0000")
    state.busy = str(busy.id)
    for index in range(state.deposits, int(DEPOSITS * fraction)):
        company = Organisation.objects.create(
            name=f"Entreprise {index:03d}", kind="bidder", created_at=now
        )
        user = User.objects.create(
            email=f"offres@e{index:03d}.fr", organisation=company, created_at=now
        )
        deposit = Deposit.objects.create(
            tender=busy, bidder=company, user=user, received_at=now, late=index % 10 == 0,
            receipt="{}",
        )  # fmt: skip
        for kind in ("candidature", "offre"):
            Envelope.objects.create(
                deposit=deposit, kind=kind, size=1_000_000 + index,
                sha256=hashlib.sha256(f"{index}{kind}".encode()).hexdigest(),
                storage_name=f"{uuid.uuid4()}.p7m",
            )  # fmt: skip
    state.deposits = int(DEPOSITS * fraction)
    if state.company is None:
        state.company = User.objects.get(email="offres@e000.fr")
        for tender in Tender.objects.filter(launched_at__isnull=False).exclude(id=busy.id):
            deposit = Deposit.objects.create(
                tender=tender, bidder=state.company.organisation, user=state.company,
                received_at=now, late=False, receipt="{}",
            )  # fmt: skip
            for kind in ("candidature", "offre"):
                Envelope.objects.create(
                    deposit=deposit, kind=kind, size=1_000_000,
                    sha256=hashlib.sha256(f"{tender.id}{kind}".encode()).hexdigest(),
                    storage_name=f"{uuid.uuid4()}.p7m",
                )  # fmt: skip
    from scelle.platform.assistants.models import Job, Workstation

    workstation = Workstation.objects.get_or_create(
        organisation=agent.organisation, agent=agent, name="Poste 1",
        defaults={"version": "1", "first_seen_at": now, "last_seen_at": now},
    )[0]  # fmt: skip
    for index in range(state.jobs, int(JOBS * fraction)):
        Job.objects.create(
            organisation=agent.organisation, agent=agent, workstation=workstation,
            kind="generate_key_pair", created_at=now, state=("done", "failed")[index % 2],
            params={"designation": f"BI-CLE-J{index:03d}", "service": str(service.id)},
        )  # fmt: skip
    state.jobs = int(JOBS * fraction)


def pages(state: Data) -> dict[str, str]:
    """The agent's pages; COMPANY_PAGES are the company's."""
    return {
        "remote jobs (100)": "/traitements-distants/",
        "key page": f"/administration/cles-de-chiffrement/service/{state.service.id}/",
        "tenders list": "/consultations/",
        "tender page (200 deposits)": f"/consultations/{state.busy}/",
        COMPANY_PAGE: "/mes-depots/",
    }


COMPANY_PAGE = "Mes dépôts (company)"
FRONT = ("nginx",)
"""The third server: bench/front.py, not `scelle serve` options."""


def queries_per_page(state: Data) -> dict[str, int]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    agent, company = Client(), Client()
    agent.force_login(state.agent)
    company.force_login(state.company)
    counted = {}
    for name, path in pages(state).items():
        client = company if name == COMPANY_PAGE else agent
        with CaptureQueriesContext(connection) as captured:
            answer = client.get(path, secure=True, HTTP_HOST="127.0.0.1")
        assert answer.status_code == 200, (path, answer.status_code)
        counted[name] = len(captured)
    return counted


def session_cookie(user: User) -> str:
    """A logged-in session of `user`, made as Django's login makes one."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return str(session.session_key)


def load(
    url: str, path: str, cookie: str, clients: int, seconds: float
) -> tuple[float, list[float]]:
    """`clients` threads asking `path` in a loop for `seconds`: (requests/s, latencies)."""
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client() -> None:
        mine: list[float] = []
        with httpx.Client(base_url=url, cookies={"scelle_session": cookie}, timeout=30) as http:
            while time.monotonic() < end:
                began = time.perf_counter()
                answer = http.get(path)
                mine.append(time.perf_counter() - began)
                if answer.status_code != 200:
                    errors.append(answer.status_code)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"{path}: {len(errors)} answers were not 200 (first {errors[0]})")
    return len(latencies) / (time.monotonic() - began), latencies


def measure(
    url: str, pid: int, state: Data, cookies: tuple[str, str], clients: int, seconds: float
) -> dict[str, float]:
    """Each page under `clients` clients for `seconds`; prints a line a page and gives
    {page: p99 ms}."""
    print(
        f"{'page':30} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'p99 / health':>13} "
        f"{'server CPU ms/req':>18}"
    )
    reference = None
    found = {}
    for name, path in {"/api/health (reference)": "/api/health", **pages(state)}.items():
        cookie = cookies[1] if name == COMPANY_PAGE else cookies[0]
        before = cpu_seconds(pid)
        rate, latencies = load(url, path, cookie, clients, seconds)
        cpu = (cpu_seconds(pid) - before) / len(latencies) * 1000
        p50 = statistics.median(latencies) * 1000
        p99 = statistics.quantiles(latencies, n=100)[98] * 1000
        reference = reference or p99
        found[name] = p99
        print(f"{name:30} {rate:7.0f} {p50:8.1f} {p99:8.1f} {p99 / reference:13.2f} {cpu:18.1f}")
    return found


def main() -> int:
    """Long because it sets up the data, then measures two servers in turn, in order."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scelle-bench-web-") as folder:
        data = Path(folder) / "data"
        from scelle.platform import server

        server.configure(data)
        server.prepare()
        state = Data()
        populate(0.1, state)
        small = queries_per_page(state)
        populate(1.0, state)
        full = queries_per_page(state)
        cookies = (session_cookie(state.agent), session_cookie(state.company))
        from django.db import connections

        connections.close_all()
        print(f"{'page':30} {'queries at 10%':>15} {'at 100%':>8}")
        for name in small:
            print(f"{name:30} {small[name]:>15} {full[name]:>8}")
        cores = os.cpu_count() or 1
        runs = {}
        for label, pinned, options in (
            ("one process (today's reference), on core 0; clients on core 1", True, ()),
            (f"one process per core ({cores}, --processes 0); clients on any core", False,
             ("--processes", "0")),
            ("nginx, then two scelle serve of one process (bench/front.py); clients on any "
             "core", False, FRONT),
        ):  # fmt: skip
            if options == FRONT:
                process, url = front.start(data)
            else:
                process, url = start(data, pinned=pinned, options=options)
            if hasattr(os, "sched_setaffinity") and cores > 1:
                os.sched_setaffinity(0, {1} if pinned else set(range(cores)))
            try:
                print(f"\n{args.clients} clients, {args.seconds:.0f} s a page; scelle serve "
                      f"(SQLite, 8 threads a process): {label}")  # fmt: skip
                runs[label] = measure(url, process.pid, state, cookies, args.clients, args.seconds)
                print(f"server peak RSS: {peak_rss_mib(process.pid):.0f} MiB (first process)")
            finally:
                process.terminate()
                process.wait(timeout=30)
        single, per_core, fronted = runs.values()
        print("\np99 over one process's (target: p99 < 150 ms)")
        print(f"{'page':30} {'one process':>12} {'per core':>9} {'ratio':>6} "
              f"{'nginx + 2':>10} {'ratio':>6}")  # fmt: skip
        for name in pages(state):
            print(f"{name:30} {single[name]:12.1f} {per_core[name]:9.1f} "
                  f"{per_core[name] / single[name]:6.2f} {fronted[name]:10.1f} "
                  f"{fronted[name] / single[name]:6.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SCELLE_LANG", "fr")
    sys.exit(main())
