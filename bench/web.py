"""Pages under load: 16 logged-in agents at once on the heaviest pages of a busy buyer.

Data: one service with 50 key pairs, 500 tenders, one tender with 200 deposits, put in
through the platform's services (key pairs, tenders) and its models (deposits, whose
upload path bench/deposit.py measures). A real `scelle serve` on SQLite answers.

Printed:
  - database queries per page, at a tenth of the data and at all of it (they must not
    grow with the rows);
  - for /api/health (the reference, in the same run), the key page, the tenders list
    and the tender's page: requests per second, p50 and p99 latency with 16 clients;
  - the ratio of each page's p99 to the reference's, and the server's peak RSS.
Long lists show 50 rows a page (the tenders, a tender's deposits), so a page's cost does
not grow with the rows. The server runs on core 0, the clients on core 1.
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
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from deposit import PASSWORD, cpu_seconds, peak_rss_mib, start

KEY_PAIRS = 50
TENDERS = 500
DEPOSITS = 200


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


def populate(fraction: float, state: Data) -> None:
    """Add rows up to `fraction` of the full data set (idempotent between calls)."""

    from scelle.core import authority
    from scelle.core.clock import system_clock
    from scelle.platform.accounts import services as accounts
    from scelle.platform.accounts.models import Organisation, User
    from scelle.platform.deposits.models import Deposit, Envelope
    from scelle.platform.keypairs import services as keypairs
    from scelle.platform.tenders import services as tenders

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
        if index < 3:
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


def pages(state: Data) -> dict[str, str]:
    return {
        "remote jobs (empty: the layout)": "/traitements-distants/",
        "key page": f"/administration/cles-de-chiffrement/service/{state.service.id}/",
        "tenders list": "/consultations/",
        "tender page (200 deposits)": f"/consultations/{state.busy}/",
    }


def queries_per_page(state: Data) -> dict[str, int]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(state.agent)
    counted = {}
    for name, path in pages(state).items():
        with CaptureQueriesContext(connection) as captured:
            answer = client.get(path, secure=True, HTTP_HOST="127.0.0.1")
        assert answer.status_code == 200, (path, answer.status_code)
        counted[name] = len(captured)
    return counted


def session_cookie(state: Data) -> str:
    """A logged-in session, made as Django's login makes one."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    agent = state.agent
    session = SessionStore()
    session[SESSION_KEY] = str(agent.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = agent.get_session_auth_hash()
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


def main() -> int:
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
        cookie = session_cookie(state)
        from django.db import connections

        connections.close_all()
        # The server on one core, these clients on the other (bench/deposit.py's pinning).
        process, url = start(data, pinned=True)
        if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(0, {1})
        try:
            print(f"{'page':30} {'queries at 10%':>15} {'at 100%':>8}")
            for name in small:
                print(f"{name:30} {small[name]:>15} {full[name]:>8}")
            print()
            print(
                f"{args.clients} clients on core 1, {args.seconds:.0f} s a page; scelle serve "
                "(SQLite, 8 threads) on core 0"
            )
            print(
                f"{'page':30} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'p99 / health':>13} "
                f"{'server CPU ms/req':>18}"
            )
            reference = None
            for name, path in {"/api/health (reference)": "/api/health", **pages(state)}.items():
                before = cpu_seconds(process.pid)
                rate, latencies = load(url, path, cookie, args.clients, args.seconds)
                cpu = (cpu_seconds(process.pid) - before) / len(latencies) * 1000
                p50 = statistics.median(latencies) * 1000
                p99 = statistics.quantiles(latencies, n=100)[98] * 1000
                reference = reference or p99
                print(
                    f"{name:30} {rate:7.0f} {p50:8.1f} {p99:8.1f} {p99 / reference:13.2f} "
                    f"{cpu:18.1f}"
                )
            print(f"\nserver peak RSS: {peak_rss_mib(process.pid):.0f} MiB")
        finally:
            process.terminate()
            process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SCELLE_LANG", "fr")
    sys.exit(main())
