"""Routes of the assistant: heartbeat, asking for jobs, reporting them; giving jobs.

`GET /assistant/jobs/next` answers at once here; under `scelle serve` the gateway
asks it again every second for up to `wait` seconds before it answers 204, so
an assistant waiting for work holds no thread (scelle.platform.gateway).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field, StrictBool

from scelle.platform.answers import actor
from scelle.platform.assistants import services
from scelle.platform.assistants.models import Job, Workstation
from scelle.platform.clock import now
from scelle.platform.schemas import responses

router = Router(tags=["assistant"])


_TEXT = r"^[^\x00-\x1f\x7f]*$"
"""No control character (NUL included, which PostgreSQL refuses)."""


class ReportedKeyPair(Schema):
    name: str = Field(max_length=100, pattern=_TEXT)
    common_name: str = Field(max_length=64, pattern=_TEXT)
    not_after: str = Field(
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
        r"(Z|[+-][0-9]{2}:[0-9]{2})$"
    )
    """As the workstation states it, shown on the pages only (ISO 8601 with its offset)."""
    fingerprint_sha256: str = Field(pattern=r"^[0-9A-F]{2}(:[0-9A-F]{2}){31}$")
    on_token: StrictBool = False
    """Its private key lives on a token (smart card, HSM) the workstation uses."""


class HeartbeatIn(Schema):
    workstation: str = Field(pattern=r"^[\w][\w .@()-]{0,63}$")
    """The workstation's name: letters, digits, spaces, dots, dashes, @, brackets."""
    version: str = Field(max_length=40, pattern=_TEXT)
    key_pairs: list[ReportedKeyPair] = Field(max_length=services.MAX_REPORTED_KEYS)
    """The certificates of the workstation's store: nothing secret."""
    running: StrictBool = True
    """False: the assistant stops now (the pages say "not detected" at once)."""


class WorkstationOut(Schema):
    id: uuid.UUID
    name: str
    last_seen_at: dt.datetime


def _workstation(workstation: Workstation) -> WorkstationOut:
    return WorkstationOut(
        id=workstation.id, name=workstation.name, last_seen_at=workstation.last_seen_at
    )


@router.post("/heartbeat", response=responses({200: WorkstationOut}, 403))
def heartbeat(request: HttpRequest, payload: HeartbeatIn) -> WorkstationOut:
    """The agent's assistant runs on this workstation; its store holds these key pairs."""
    workstation = services.heartbeat(
        actor(request),
        name=payload.workstation,
        version=payload.version,
        key_pairs=[entry.model_dump() for entry in payload.key_pairs],
        running=payload.running,
        now=now(),
    )
    return _workstation(workstation)


class JobOut(Schema):
    id: uuid.UUID
    kind: str
    workstation: uuid.UUID
    workstation_name: str
    params: dict[str, Any]
    state: str
    message: str
    result: dict[str, Any]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


def job_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        kind=job.kind,
        workstation=job.workstation_id,
        workstation_name=job.workstation.name,
        params=job.params,
        state=job.state,
        message=job.message,
        result=job.result,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


@router.get("/jobs/next", response=responses({200: JobOut, 204: None}, 403, 404))
def next_job(request: HttpRequest, workstation: uuid.UUID, wait: int = 0) -> JobOut | Status[None]:
    """The next job for this workstation, now started; 204 when none came within `wait`
    seconds, at most 30 (the gateway waits; Django alone answers at once)."""
    job = services.next_job(actor(request), workstation, now=now())
    return Status(204, None) if job is None else job_out(job)


class JobIn(Schema):
    kind: Literal["add_key_pair", "open_tender", "take_part"]
    """The closed list of what an assistant does."""
    params: dict[str, str] = Field(max_length=10)
    workstation: uuid.UUID | None = None
    """Default: the agent's workstation heard from last, if its assistant runs."""


@router.post("/jobs", response=responses({201: JobOut}, 403, 404, 409))
def create_job(request: HttpRequest, payload: JobIn) -> Status[JobOut]:
    """Give a job of the closed list to one's own assistant."""
    job = services.request_job(
        actor(request),
        kind=payload.kind,
        params=payload.params,
        workstation_id=payload.workstation,
        now=now(),
    )
    return Status(201, job_out(job))


@router.get("/jobs", response=responses({200: list[JobOut]}, 403))
def list_jobs(request: HttpRequest) -> list[JobOut]:
    """Traitements distants: the agent's jobs, newest first."""
    return [job_out(job) for job in services.jobs_of(actor(request))]


@router.get("/jobs/{job_id}", response=responses({200: JobOut}, 403, 404))
def show_job(request: HttpRequest, job_id: uuid.UUID) -> JobOut:
    """One of the agent's jobs."""
    return job_out(services.job_for(actor(request), job_id))


class FinishIn(Schema):
    outcome: Literal["finished", "failed"]
    message: str = Field(max_length=services.MAX_MESSAGE)
    result: dict[str, Any] = Field(default_factory=dict)


@router.post("/jobs/{job_id}/finish", response=responses({200: JobOut}, 403, 404, 409))
def finish_job(request: HttpRequest, job_id: uuid.UUID, payload: FinishIn) -> JobOut:
    """The assistant's report of a job it started."""
    job = services.finish_job(
        actor(request),
        job_id,
        succeeded=payload.outcome == "finished",
        message=payload.message,
        result=payload.result,
        now=now(),
    )
    return job_out(job)
