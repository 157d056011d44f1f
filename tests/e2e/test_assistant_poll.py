"""Assistants waiting for jobs on a real `scelle serve`: the long poll holds no thread, and a
job given meanwhile goes to exactly one of them."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import PASSWORD, Platform
from tests.e2e.test_platform_journey import set_up

pytestmark = [pytest.mark.slow, pytest.mark.platform]

POLLERS = 12
"""More than the server's 8 Django threads."""


def test_long_polls_hold_no_thread_and_a_job_goes_to_one(
    platform: Platform, password_file: Path
) -> None:
    set_up(platform, password_file)
    login = httpx.post(
        f"{platform.url}/api/auth/login",
        json={"email": "acheteur@rouen.fr", "password": PASSWORD},
        timeout=30,
    ).json()
    headers = {"Authorization": f"Bearer {login['token']}"}
    service = login["user"]["services"][0]["id"]
    with httpx.Client(base_url=f"{platform.url}/api", headers=headers, timeout=60) as api:
        workstation = api.post(
            "/assistant/heartbeat",
            json={"workstation": "POSTE-ACHAT-12", "version": "1", "key_pairs": []},
        ).json()["id"]

        def poll(_index: int) -> httpx.Response:
            return api.get("/assistant/jobs/next", params={"workstation": workstation, "wait": 8})

        with concurrent.futures.ThreadPoolExecutor(POLLERS) as pool:
            waiting = [pool.submit(poll, index) for index in range(POLLERS)]
            # The pollers wait 8 s; were each holding one of the 8 threads, this would
            # queue behind them for that long.
            assert api.get("/health", timeout=5).json() == {"status": "ok"}
            made = api.post(
                "/assistant/jobs",
                json={"kind": "add_key_pair",
                      "params": {"service": service, "designation": "BI-CLE"}},
            )  # fmt: skip
            assert made.status_code == 201, made.text
            answers = [future.result() for future in waiting]
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [204] * (POLLERS - 1)
    [taken] = [answer.json() for answer in answers if answer.status_code == 200]
    assert taken["id"] == made.json()["id"] and taken["state"] == "started"
