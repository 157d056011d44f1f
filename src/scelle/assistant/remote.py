"""The assistant's loop: heartbeat, long poll for jobs, do them, report (traitements distants).

`scelle assistant` never listens for the platform: it asks. The platform may be
down, slow or hostile; the loop waits and asks again (backoff up to a minute),
stops with a clear message when its login has expired or was revoked, and
checks each job itself before doing it (DESIGN.md, "The assistant" and "Trust"):
the job's kind is one of its closed list, ids are UUIDs, the deadline has
passed by this workstation's clock, a referenced key pair is in its store, and
opened files go under the folder set on this workstation.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scelle import __version__
from scelle.assistant.commission import take_part
from scelle.assistant.config import AssistantConfig
from scelle.assistant.keys import free_name, generate_key_pair, publish_key_pair
from scelle.assistant.opening import OpeningReport, folder_name, open_tender
from scelle.assistant.tenders import launch_record, opening_keys
from scelle.client import api
from scelle.core import certs
from scelle.core.clock import Clock
from scelle.core.errors import (
    N_,
    NotAuthenticatedError,
    PlatformAnswerError,
    PlatformUnavailableError,
    RuleViolationError,
    ScelleError,
    fill_plain,
)
from scelle.i18n import language, translate
from scelle.keystore import KeyStore

LONG_POLL_SECONDS = 25
HEARTBEAT_SECONDS = 20.0
MAX_BACKOFF_SECONDS = 60.0
MAX_LISTED = 300
MAX_FOLDER_CHARACTERS = 500
"""The longest folder path an opening's report gives the page."""
"""Envelopes listed one by one in an opening's result; the rest are counted."""
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_FINGERPRINT = re.compile(r"[0-9A-F]{2}(:[0-9A-F]{2}){31}")


class JobRefused(ScelleError):
    """The assistant will not do this job as the platform gave it."""


@dataclass(frozen=True)
class Outcome:
    """What a job came to: its message as an English template and its values, so that the
    page and the window say it in their reader's language (the `said` of its result)."""

    succeeded: bool
    template: str
    values: dict[str, str | int | float] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        """In English: the job's message on the platform, for whoever has no catalogue."""
        return fill_plain(self.template, self.values) or self.template

    @property
    def report(self) -> dict[str, Any]:
        """The result sent to the platform, with what to say in any language."""
        return {**self.result, "said": {"template": self.template, "values": self.values}}


def reported_key_pairs(store: KeyStore) -> list[dict[str, str | bool]]:
    """What the heartbeat says of the store (its token's included): certificates only,
    nothing secret. A token that does not answer (out of its reader) leaves the store's."""
    try:
        listed = store.key_pairs()
    except ScelleError:
        listed = store.stored_key_pairs()
    return [
        {
            "name": key.name,
            "common_name": key.cn[:64],
            "not_after": key.not_after.isoformat(),
            "fingerprint_sha256": key.fingerprint_sha256,
            "on_token": key.token is not None,
        }
        for key in listed
    ]


def _text(params: dict[str, Any], name: str, limit: int = 200) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise JobRefused(
            N_("the job's {name} is missing or wrong"),
            name=name,
        )
    return value


def _uuid(params: dict[str, Any], name: str) -> str:
    value = _text(params, name, 36)
    if not _UUID.fullmatch(value):
        raise JobRefused(
            N_("the job's {name} is not an id"),
            name=name,
        )
    return value


class Assistant:
    """One workstation's assistant, for the agent logged in with `client`."""

    def __init__(
        self,
        client: api.PlatformClient,
        store: KeyStore,
        config: AssistantConfig,
        *,
        clock: Clock,
        say: Callable[[str], None] = lambda _message: None,
        bits: int = certs.DEFAULT_RSA_BITS,
    ) -> None:
        self.client = client
        self.store = store
        self.config = config
        self.clock = clock
        self.say = say
        self.bits = bits
        self.workstation: str | None = None
        self.state = "starting"
        """starting, ready, unreachable, logged-out: what the window's Accueil shows."""
        self._last_beat = -HEARTBEAT_SECONDS
        self._unreported: list[tuple[str, Outcome]] = []

    # --- the loop ---------------------------------------------------------------------

    def beat(self) -> str:
        """Tell the platform this workstation's assistant runs, and what its store holds;
        returns the workstation's id."""
        answer = self.client.heartbeat(
            self.config.workstation, __version__, reported_key_pairs(self.store)
        )
        self.workstation = answer["id"]
        self._last_beat = self.clock().timestamp()
        return answer["id"]

    def wake(self) -> None:
        """The store or the settings changed: the next turn tells the platform."""
        self._last_beat = -HEARTBEAT_SECONDS

    def goodbye(self) -> None:
        """Tell the platform this assistant stops, so the pages say so at once."""
        with contextlib.suppress(ScelleError):
            self.client.heartbeat(
                self.config.workstation, __version__, reported_key_pairs(self.store),
                running=False,
            )  # fmt: skip

    def step(self, *, wait: int = LONG_POLL_SECONDS) -> bool:
        """One turn: heartbeat when due, report what is left, ask for a job and do it.
        Returns whether a job was done."""
        workstation = self.workstation
        if workstation is None or self.clock().timestamp() - self._last_beat >= (HEARTBEAT_SECONDS):
            workstation = self.beat()
        self._report_left()
        self.state = "ready"  # the platform answered: the window says so during the long poll
        job = self.client.next_job(workstation, wait=wait)
        self.state = "ready"
        if job is None:
            return False
        self.say(f"job {job['kind']} started")
        outcome = self.do(job)
        self._unreported.append((job["id"], outcome))
        self._report_left()
        self.say(f"job {job['kind']} {'finished' if outcome.succeeded else 'failed'}: "
                 f"{translate(language(), outcome.template, **outcome.values)}")  # fmt: skip
        self.wake()  # the store may have changed: tell at once
        return True

    def _report_left(self) -> None:
        while self._unreported:
            job_id, outcome = self._unreported[0]
            # Already reported, or refused: nothing more to say about it.
            with contextlib.suppress(RuleViolationError, PlatformAnswerError):
                self.client.finish_job(
                    job_id,
                    succeeded=outcome.succeeded,
                    message=outcome.message,
                    result=outcome.report,
                )
            self._unreported.pop(0)

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set or the login ends (NotAuthenticatedError is raised)."""
        backoff = 1.0
        while not stop.is_set():
            try:
                self.step()
                backoff = 1.0
            except NotAuthenticatedError:
                self.state = "logged-out"
                raise
            except PlatformUnavailableError as error:  # PlatformAnswerError included
                self.state = "unreachable"
                self.say(f"{error.message}; trying again in {backoff:.0f} s")
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    # --- the jobs ---------------------------------------------------------------------

    def do(self, job: api.Job) -> Outcome:
        """Do one job; any failure becomes its message, never an exception."""
        try:
            if job["kind"] == "add_key_pair":
                return self._add_key_pair(job["params"])
            if job["kind"] == "open_tender":
                return self._open_tender(job["params"])
            if job["kind"] == "take_part":
                return self._take_part(job["params"])
            raise JobRefused(
                N_("this assistant does not do {value!r}"),
                value=job["kind"][:40],
            )
        except NotAuthenticatedError:
            raise
        except ScelleError as error:
            values = {
                k: v if isinstance(v, int | float) else str(v) for k, v in error.values.items()
            }
            return Outcome(False, error.template, values)
        except OSError as error:
            return Outcome(False, "{problem}", {"problem": f"{error.strerror or error}"})

    def _add_key_pair(self, params: dict[str, Any]) -> Outcome:
        """Add a key pair to a service: generated in this store, or one it holds, referenced.

        Long because generating and referencing share the job's checks on what the platform
        sent, and its report.
        """
        service = _uuid(params, "service")
        designation = _text(params, "designation", 100)
        role = _text(params, "role", 10)
        if role not in ("personal", "backup"):
            raise JobRefused(
                N_("the job's role is neither personal nor backup"),
            )
        mode = _text(params, "mode", 10)
        if mode == "generate":
            common_name = certs.check_common_name(_text(params, "common_name", 64))
            name = free_name(self.store, designation)
            generate_key_pair(
                self.store, name, common_name, bits=self.bits, days=730, now=self.clock()
            )
            try:
                done = publish_key_pair(
                    self.client, self.store, name, service=service,
                    backup=role == "backup", designation=designation, as_is=False,
                )  # fmt: skip
            except BaseException:
                self.store.delete(name)  # made for this job only: nothing half-done
                raise
        elif mode == "reference":
            fingerprint = _text(params, "fingerprint_sha256", 95)
            if not _FINGERPRINT.fullmatch(fingerprint):
                raise JobRefused(
                    N_("the job's fingerprint is not a SHA-256 one"),
                )
            held = [k for k in self.store.key_pairs() if k.fingerprint_sha256 == fingerprint]
            if not held:
                raise JobRefused(
                    N_(
                        "this workstation's store holds no key pair with the fingerprint "
                        "{fingerprint}"
                    ),
                    fingerprint=fingerprint,
                )
            name = held[0].name
            done = publish_key_pair(
                self.client, self.store, name, service=service,
                backup=role == "backup", designation=designation, as_is=False,
            )  # fmt: skip
        else:
            raise JobRefused(
                N_("the job's mode {value!r} is neither generate nor reference"),
                value=mode[:20],
            )
        registered = done.registered
        return Outcome(
            True,
            N_("{designation}: generated in this store as {name}, and referenced")
            if mode == "generate"
            else N_("{designation}: this store's key pair {name}, referenced"),
            {"designation": registered["designation"], "name": name},
            {
                "key_pair": registered["id"],
                "designation": registered["designation"],
                "local_name": done.stored.name,
                "not_after": registered["not_after"],
                "fingerprint_sha256": registered["fingerprint_sha256"],
                "mode": mode,
            },
        )

    def _open_tender(self, params: dict[str, Any]) -> Outcome:
        tender_id = _uuid(params, "tender")
        tender = self.client.tender(tender_id)
        deadline = dt.datetime.fromisoformat(tender["deadline"])
        if self.clock() < deadline:
            raise JobRefused(
                N_(
                    "the deadline of {reference} has not passed on this workstation's clock: "
                    "nothing was opened"
                ),
                reference=tender["reference"],
            )
        root = self.config.openings
        out = root / folder_name(tender["reference"])
        if not out.resolve().is_relative_to(root.resolve()):
            raise JobRefused(
                N_("the tender's folder would lie outside the openings folder"),
            )
        record = launch_record(self.store, self.client.url, tender["reference"])
        report = open_tender(
            self.client, opening_keys(self.store, tender, record), tender["id"], out,
            record=record, clock=self.clock,
        )  # fmt: skip
        return _opening_outcome(report, tender["reference"], out)

    def _take_part(self, params: dict[str, Any]) -> Outcome:
        """Relay this member's shares of a commission's tender to its opener."""
        tender_id = _uuid(params, "tender")
        tender = self.client.tender(tender_id)
        record = launch_record(self.store, self.client.url, tender["reference"])
        report = take_part(
            self.client, opening_keys(self.store, tender, record), tender_id,
            now=self.clock(), record=record,
        )  # fmt: skip
        failed = [
            {"bidder": bidder, "kind": kind, "reason": reason[:300]}
            for bidder, kind, reason in report.failed[:MAX_LISTED]
        ]
        return Outcome(
            not report.failed,
            N_(
                "{reference}: {relayed} share(s) sent to the opener {opener}, {failed} "
                "envelope(s) failed"
            ),
            {"reference": report.reference, "relayed": report.relayed + report.already,
             "opener": report.opener, "failed": len(report.failed)},
            {"relayed": report.relayed, "already": report.already, "opener": report.opener,
             "failed": failed},
        )  # fmt: skip


def _opening_outcome(report: OpeningReport, reference: str, folder: Path) -> Outcome:
    listed: list[dict[str, Any]] = []
    for done in report.opened + report.already:
        listed.append(
            {
                "bidder": done.bidder,
                "deposit": done.deposit,
                "kind": done.kind,
                "ok": True,
                "files": done.files,
                "late": done.late,
                "outside": list(done.outside)[:5],
            }
        )
    for failed in report.failed:
        listed.append(
            {
                "bidder": failed.bidder,
                "deposit": failed.deposit,
                "kind": failed.kind,
                "ok": False,
                "reason": failed.reason[:300],
            }
        )
    opened = len(report.opened) + len(report.already)
    return Outcome(
        not report.failed,
        N_("{reference}: {opened} envelope(s) opened, {failed} failed")
        if listed
        else N_("{reference}: no deposit to open"),
        {"reference": reference, "opened": opened, "failed": len(report.failed)},
        {
            "envelopes": listed[:MAX_LISTED],
            "more": max(0, len(listed) - MAX_LISTED),
            "opened": opened,
            "failed": len(report.failed),
            "warnings": [warning[:300] for warning in report.warnings[:20]],
            # Where the agent finds the files on the workstation (the page says it).
            "folder": str(folder)[:MAX_FOLDER_CHARACTERS],
        },
    )
