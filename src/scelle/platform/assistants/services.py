"""The assistant's side of the platform: workstations' heartbeats and remote jobs.

`scelle assistant` never listens: it sends a heartbeat (its workstation's name
and the certificates its store holds) and asks for the jobs the pages gave to
its agent. Jobs are a closed list (`Job.Kind`); each is given by an agent to
their own workstation, with the permission its work needs, checked here when
the job is made and again by the routes the assistant then calls (publishing
a key pair, downloading envelopes). No job carries a private key or a
plaintext: what comes back is a message and a small result (DESIGN.md,
"The assistant").
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from scelle.core import certs
from scelle.core.errors import (
    N_,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
)
from scelle.core.text import storable
from scelle.platform.accounts.models import Permission, User
from scelle.platform.accounts.services import require_agent, service_for
from scelle.platform.assistants.models import Job, Workstation
from scelle.platform.audit.services import PLATFORM_ACTOR, record
from scelle.platform.keypairs.models import KeyPair
from scelle.platform.keypairs.services import check_designation, designation_free
from scelle.platform.mail import services as mail
from scelle.platform.opening import commission
from scelle.platform.opening.services import check_openable
from scelle.platform.tenders.services import tender_for

READY = dt.timedelta(seconds=60)
"""A workstation heard from this recently is shown as running: the assistant asks for
jobs at least every 30 seconds."""
SEEN_EVERY = dt.timedelta(seconds=10)
"""Asking for jobs refreshes `last_seen_at` at most this often (one write, not one a poll)."""
MAX_REPORTED_KEYS = 500
MAX_MESSAGE = 2000
MAX_RESULT_BYTES = 256 << 10
_FINGERPRINT = re.compile(r"[0-9A-F]{2}(:[0-9A-F]{2}){31}")
_WORKSTATION = re.compile(r"[\w][\w .@()-]{0,63}")


# --- workstations ---------------------------------------------------------------


def _reported(key_pairs: Sequence[Mapping[str, Any]]) -> list[dict[str, str | bool]]:
    if len(key_pairs) > MAX_REPORTED_KEYS:
        raise InvalidInputError(
            N_("a store reports at most {most} key pairs"), most=MAX_REPORTED_KEYS
        )
    cleaned: list[dict[str, str | bool]] = []
    for entry in key_pairs:
        if not all(storable(str(value)) for value in entry.values()):
            raise InvalidInputError(N_("a reported key pair holds text that cannot be stored"))
        fingerprint = str(entry.get("fingerprint_sha256", ""))
        if not _FINGERPRINT.fullmatch(fingerprint):
            raise InvalidInputError(N_("a reported key pair's fingerprint is not a SHA-256 one"))
        cleaned.append(
            {
                "name": str(entry.get("name", ""))[:100],
                "common_name": str(entry.get("common_name", ""))[:64],
                "not_after": str(entry.get("not_after", ""))[:40],
                "fingerprint_sha256": fingerprint,
                "on_token": entry.get("on_token") is True,
            }
        )
    return cleaned


def heartbeat(
    actor: User,
    *,
    name: str,
    version: str,
    key_pairs: Sequence[Mapping[str, Any]],
    running: bool = True,
    now: dt.datetime,
) -> Workstation:
    """The agent's assistant is running on workstation `name`, its store holding `key_pairs`
    (or, with `running` False, stops now)."""
    require_agent(actor)
    name = name.strip()
    if not storable(version) or not storable(name):
        raise InvalidInputError(N_("the assistant's version or name cannot be stored"))
    if not _WORKSTATION.fullmatch(name):
        raise InvalidInputError(
            N_(
                "{name!r} cannot name a workstation: 1 to 64 letters, digits, spaces, "
                "dots, dashes, @ or brackets"
            ),
            name=name[:80],
        )
    reported = _reported(key_pairs)
    with transaction.atomic():
        workstation = (
            Workstation.objects.select_for_update().filter(agent=actor, name__iexact=name).first()
        )
        if workstation is None:
            workstation = Workstation.objects.create(
                organisation_id=actor.organisation_id,
                agent=actor,
                name=name,
                version=version[:40],
                first_seen_at=now,
                last_seen_at=now,
                running=running,
                key_pairs=reported,
            )
            record(
                "assistants.workstation.paired",
                actor=actor.email,
                target=workstation,
                organisation_id=actor.organisation_id,
                details={"name": name, "version": version[:40]},
                now=now,
            )
        else:
            workstation.version = version[:40]
            workstation.last_seen_at = now
            workstation.key_pairs = reported
            workstation.running = running
            workstation.save(update_fields=["version", "last_seen_at", "key_pairs", "running"])
    return workstation


def own_workstation(actor: User, workstation_id: uuid.UUID | str) -> Workstation:
    """One of the actor's own workstations; anyone else's is "not found"."""
    require_agent(actor)
    try:
        return Workstation.objects.get(id=workstation_id, agent=actor)
    except (Workstation.DoesNotExist, ValidationError, ValueError):
        raise NotFoundError(N_("no such workstation")) from None


@dataclass(frozen=True)
class AssistantState:
    """What the pages' banner "État de l'assistant Scellé" says."""

    workstation: Workstation | None
    """The agent's workstation heard from last, if any."""
    ready: bool
    """Heard from within `READY`."""


def assistant_state(actor: User, *, now: dt.datetime) -> AssistantState:
    latest = Workstation.objects.filter(agent=actor).order_by("-last_seen_at").first()
    ready = latest is not None and latest.running and latest.last_seen_at >= now - READY
    return AssistantState(latest, ready)


def _ready_workstation(
    actor: User, workstation_id: uuid.UUID | str | None, now: dt.datetime
) -> Workstation:
    if workstation_id is not None:
        workstation = own_workstation(actor, workstation_id)
    else:
        state = assistant_state(actor, now=now)
        if state.workstation is None:
            raise RuleViolationError(
                N_("the Scellé assistant has never run on your workstation"),
                hint=N_("Start it with scelle assistant (after scelle login)."),
            )
        workstation = state.workstation
    if not workstation.running or workstation.last_seen_at < now - READY:
        raise RuleViolationError(
            N_("the Scellé assistant is not running on {workstation}"),
            hint=N_("Start it with scelle assistant, then try again."),
            workstation=workstation.name,
        )
    return workstation


# --- giving jobs -------------------------------------------------------------------


def _give(
    actor: User, workstation: Workstation, kind: str, params: dict[str, Any], now: dt.datetime
) -> Job:
    with transaction.atomic():
        job = Job.objects.create(
            organisation_id=actor.organisation_id,
            agent=actor,
            workstation=workstation,
            kind=kind,
            params=params,
            created_at=now,
        )
        record(
            "assistants.job.created",
            actor=actor.email,
            target=job,
            organisation_id=actor.organisation_id,
            details={"kind": kind, "workstation": workstation.name, **params},
            now=now,
        )
    return job


def request_key_pair(
    actor: User,
    *,
    service_id: uuid.UUID | str,
    designation: str,
    backup: bool,
    common_name: str | None,
    reference: str | None,
    workstation_id: uuid.UUID | str | None = None,
    now: dt.datetime,
) -> Job:
    """Ajouter un bi-clé: the agent's assistant generates a key pair (or takes the one of
    its store whose certificate has the fingerprint `reference`) and publishes it.

    The rules of the registry are checked now, so the agent hears at once of a taken
    designation; the platform checks them again when the assistant publishes.
    """
    service = service_for(actor, service_id, Permission.Name.MANAGE_KEYS)
    designation = check_designation(designation)
    designation_free(service, designation, except_id=None)
    workstation = _ready_workstation(actor, workstation_id, now)
    params: dict[str, Any] = {
        "service": str(service.id),
        "service_name": service.name,
        "designation": designation,
        "role": KeyPair.Role.BACKUP if backup else KeyPair.Role.PERSONAL,
    }
    if reference is None:
        params["mode"] = "generate"
        params["common_name"] = certs.check_common_name(common_name or designation)
    else:
        held = {entry["fingerprint_sha256"]: entry for entry in workstation.key_pairs}
        if reference not in held:
            raise RuleViolationError(
                N_("the store of {workstation} holds no key pair with the fingerprint {sha}"),
                workstation=workstation.name,
                sha=reference[:95],
            )
        params["mode"] = "reference"
        params["fingerprint_sha256"] = reference
        params["common_name"] = held[reference]["common_name"]
    return _give(actor, workstation, Job.Kind.ADD_KEY_PAIR, params, now)


def request_opening(
    actor: User,
    tender_key: str,
    *,
    workstation_id: uuid.UUID | str | None = None,
    now: dt.datetime,
) -> Job:
    """Ouvrir les plis: the agent's assistant opens the tender's envelopes into the folder
    chosen on the workstation (rule 7: after the deadline, with `open`)."""
    tender = tender_for(actor, tender_key, Permission.Name.OPEN)
    check_openable(tender, now)
    workstation = _ready_workstation(actor, workstation_id, now)
    if tender.commission_threshold is not None and commission.is_member(actor, tender):
        # The opener's workstation gathers the members' shares: the page says so at once.
        commission.start_opening(actor, str(tender.id), now=now)
    params = {"tender": str(tender.id), "reference": tender.reference}
    return _give(actor, workstation, Job.Kind.OPEN_TENDER, params, now)


def request_take_part(
    actor: User,
    tender_key: str,
    *,
    workstation_id: uuid.UUID | str | None = None,
    now: dt.datetime,
) -> Job:
    """Prendre part: the member consents to the commission's opening; their assistant
    relays their shares to the opener (assistant.commission)."""
    workstation = _ready_workstation(actor, workstation_id, now)
    with transaction.atomic():
        participation = commission.take_part(actor, tender_key, now=now)
        tender = participation.opening.tender
        params = {"tender": str(tender.id), "reference": tender.reference}
        return _give(actor, workstation, Job.Kind.TAKE_PART, params, now)


def request_job(
    actor: User,
    *,
    kind: str,
    params: Mapping[str, Any],
    workstation_id: uuid.UUID | str | None,
    now: dt.datetime,
) -> Job:
    """A job of one of the kinds of the closed list, given by the API."""
    if kind == Job.Kind.ADD_KEY_PAIR:
        return request_key_pair(
            actor,
            service_id=str(params.get("service", "")),
            designation=str(params.get("designation", "")),
            backup=params.get("role") == KeyPair.Role.BACKUP,
            common_name=params.get("common_name"),
            reference=params.get("fingerprint_sha256"),
            workstation_id=workstation_id,
            now=now,
        )
    if kind == Job.Kind.OPEN_TENDER:
        return request_opening(
            actor, str(params.get("tender", "")), workstation_id=workstation_id, now=now
        )
    if kind == Job.Kind.TAKE_PART:
        return request_take_part(
            actor, str(params.get("tender", "")), workstation_id=workstation_id, now=now
        )
    raise InvalidInputError(
        N_("an assistant does not do {kind!r}; its jobs are {kinds}"),
        kind=kind[:40],
        kinds=", ".join(Job.Kind.values),
    )


# --- the assistant's side ------------------------------------------------------------


def next_job(actor: User, workstation_id: uuid.UUID | str, *, now: dt.datetime) -> Job | None:
    """The oldest job queued for this workstation, now started; None when there is none.

    Asking counts as a heartbeat.
    """
    workstation = own_workstation(actor, workstation_id)
    with transaction.atomic():
        # Never back to running: a long poll still waiting when its assistant said
        # goodbye must not undo it; the next heartbeat says the assistant runs again.
        if workstation.running and workstation.last_seen_at < now - SEEN_EVERY:
            Workstation.objects.filter(id=workstation.id).update(last_seen_at=now)
        job = (
            Job.objects.select_for_update()
            .filter(workstation=workstation, agent=actor, state=Job.State.QUEUED)
            .order_by("created_at")
            .first()
        )
        if job is None:
            return None
        job.state = Job.State.STARTED
        job.started_at = now
        job.save(update_fields=["state", "started_at"])
    return job


def finish_job(
    actor: User,
    job_id: uuid.UUID | str,
    *,
    succeeded: bool,
    message: str,
    result: Mapping[str, Any],
    now: dt.datetime,
) -> Job:
    """The assistant's report of a started job: its message and result, once."""
    require_agent(actor)
    written = json.dumps(result, ensure_ascii=False)
    if len(written) > MAX_RESULT_BYTES:
        raise InvalidInputError(N_("a job's result is too large"))
    # jsonb refuses NUL, which json.dumps writes as an escape; a lone surrogate stays as is.
    if not storable(message) or not storable(written) or "\\u0000" in written:
        raise InvalidInputError(N_("a job's report holds text that cannot be stored"))
    with transaction.atomic():
        try:
            job = Job.objects.select_for_update().get(id=job_id, agent=actor)
        except (Job.DoesNotExist, ValidationError, ValueError):
            raise NotFoundError(N_("no such job")) from None
        if job.state != Job.State.STARTED:
            raise RuleViolationError(N_("this job is {state}, not started"), state=job.state)
        job.state = Job.State.FINISHED if succeeded else Job.State.FAILED
        job.message = message.strip()[:MAX_MESSAGE]
        job.result = dict(result)
        job.finished_at = now
        job.save(update_fields=["state", "message", "result", "finished_at"])
        record(
            f"assistants.job.{job.state}",
            actor=actor.email,
            target=job,
            organisation_id=job.organisation_id,
            details={"kind": job.kind, "message": job.message[:200]},
            now=now,
        )
        if job.state == Job.State.FAILED:
            _tell_failed(job, now)
    return job


def _tell_failed(job: Job, now: dt.datetime) -> None:
    mail.job_failed(
        job.agent, job_id=str(job.id), kind=Job.Kind(job.kind).label, created_at=job.created_at,
        message=job.message, now=now,
    )  # fmt: skip


def jobs_of(actor: User, *, limit: int = 100) -> list[Job]:
    """Traitements distants: the agent's latest jobs, newest first."""
    return list(all_jobs_of(actor)[:limit])


def all_jobs_of(actor: User) -> QuerySet[Job]:
    """Every job of the agent, newest first (the page shows them a page at a time)."""
    require_agent(actor)
    return (
        Job.objects.filter(agent=actor).select_related("workstation").order_by("-created_at", "id")
    )


def job_for(actor: User, job_id: uuid.UUID | str) -> Job:
    """One of the agent's own jobs (another's is "not found")."""
    if not actor.is_agent:
        raise PermissionDeniedError(N_("only a public buyer's agents have an assistant"))
    try:
        return Job.objects.select_related("workstation").get(id=job_id, agent=actor)
    except (Job.DoesNotExist, ValidationError, ValueError):
        raise NotFoundError(N_("no such job")) from None


WAIT_FOR_TAKING = dt.timedelta(minutes=30)
"""A job no assistant took within this long fails: the page then says so, instead of
waiting for ever (its assistant was stopped, or its workstation is off)."""
WAIT_FOR_REPORT = dt.timedelta(hours=24)
"""A started job not reported within this long fails (its assistant died on it)."""


def expire_jobs(*, now: dt.datetime) -> int:
    """Fail the jobs that were never taken, or never reported; returns how many."""
    expired = 0
    stale = (
        (Job.State.QUEUED, "created_at", WAIT_FOR_TAKING,
         N_("no Scellé assistant took this job: start it, then give the job again")),
        (Job.State.STARTED, "started_at", WAIT_FOR_REPORT,
         N_("the Scellé assistant never reported this job: give it again")),
    )  # fmt: skip
    for state, since, wait, message in stale:
        with transaction.atomic():
            jobs = list(
                Job.objects.select_for_update().filter(state=state, **{f"{since}__lt": now - wait})
            )
            for job in jobs:
                job.state = Job.State.FAILED
                job.message = message
                job.finished_at = now
                job.save(update_fields=["state", "message", "finished_at"])
                record(
                    "assistants.job.expired",
                    actor=PLATFORM_ACTOR,
                    target=job,
                    organisation_id=job.organisation_id,
                    details={"kind": job.kind, "was": state},
                    now=now,
                )
                _tell_failed(job, now)
            expired += len(jobs)
    return expired
