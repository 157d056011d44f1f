"""What each route reachable without logging in costs the platform: CPU per request.

Every route a stranger can reach is listed with the CPU milliseconds one request
costs (median of N, Django's whole stack, in this process on SQLite, no network),
as a ratio of /api/health's cost measured in the same run. The gateway's classes
and rates bound how many of each one client gets (see README, "No laptop stops
it"); this bounds what each one costs.

    python bench/anonymous.py [--repeat 50]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PASSWORD = "Mot-de-passe-Bench-2026!"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scelle-anonymous-") as folder:
        from scelle.platform import server

        server.configure(Path(folder))
        server.prepare()
        from django.test import Client

        from scelle.core.clock import system_clock
        from scelle.platform.accounts import services

        company = services.create_organisation("BTP", "bidder", now=system_clock())
        services.create_user("offres@btp.fr", company, PASSWORD, now=system_clock())
        client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="fr", HTTP_HOST="127.0.0.1")
        form = client.get("/connexion/").content.decode()
        csrf = form.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
        wrong = {"email": "nobody@example.fr", "password": "wrong"}
        addresses = (f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(1 << 20))

        # Each wrong login from a new address: the throttle answers a repeated one 429
        # (cheap); here every one pays Argon2, as a flood from many addresses does.
        def api_login() -> object:
            return client.post(
                "/api/auth/login", wrong, content_type="application/json",
                REMOTE_ADDR=next(addresses),
            )  # fmt: skip

        def page_login() -> object:
            form = {**wrong, "csrfmiddlewaretoken": csrf}
            return client.post("/connexion/", form, REMOTE_ADDR=next(addresses))

        def language() -> object:
            return client.post("/i18n/setlang/", {"language": "fr", "csrfmiddlewaretoken": csrf})

        routes: list[tuple[str, Callable[[], object]]] = [
            ("GET /api/health", lambda: client.get("/api/health")),
            ("GET /api/openapi.json", lambda: client.get("/api/openapi.json")),
            ("GET /api/docs", lambda: client.get("/api/docs")),
            ("GET /api/platform/ca", lambda: client.get("/api/platform/ca")),
            ("GET /api/tenders (no token: 401)", lambda: client.get("/api/tenders")),
            ("OPTIONS /api/uploads/ (tus)", lambda: client.options("/api/uploads/")),
            ("POST /api/uploads/ (no token: 401)", lambda: client.post("/api/uploads/")),
            ("GET / (redirect)", lambda: client.get("/")),
            ("GET /consultations/ (to login)", lambda: client.get("/consultations/")),
            ("GET /no-such-page (404)", lambda: client.get("/no-such-page")),
            ("GET /connexion/", lambda: client.get("/connexion/")),
            ("GET /static/web/scelle.css", lambda: client.get("/static/web/scelle.css")),
            ("POST /i18n/setlang/", language),
            ("POST /api/auth/login (Argon2)", api_login),
            ("POST /connexion/ (Argon2)", page_login),
        ]
        costs: dict[str, float] = {}
        for name, call in routes:
            call()  # warm: caches, the schema built once
            samples = []
            for _ in range(options.repeat):
                began = time.thread_time()
                call()
                samples.append(time.thread_time() - began)
            costs[name] = statistics.median(samples) * 1000
        reference = costs["GET /api/health"]
        print(f"CPU per request, median of {options.repeat}, one thread, SQLite")
        print(f"  {'route':40s} {'ms':>8s} {'x health':>9s}")
        for name, cost in costs.items():
            print(f"  {name:40s} {cost:8.2f} {cost / reference:9.1f}")


if __name__ == "__main__":
    main()
