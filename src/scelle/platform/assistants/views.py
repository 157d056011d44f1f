"""Pages: Traitements distants (the agent's jobs) and the assistant's state banner."""

from __future__ import annotations

import uuid

from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from scelle.platform.assistants import services
from scelle.platform.assistants.models import Job
from scelle.platform.clock import now
from scelle.platform.web.pages import PER_PAGE, Cell, actor, agent_page, shown_time, table_rows
from scelle.platform.web.templatetags.scelle_tags import spoken

JOB_TIME = "j F Y H:i:s"
"""A job's start and end, to the second."""


@agent_page
def jobs(request: HttpRequest) -> HttpResponse:
    """Traitements distants, newest first: kind, start, end, state, message."""
    page = Paginator(services.all_jobs_of(actor(request)), PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "assistants/jobs.html",
        {
            "section": "jobs",
            "page": page,
            "rows": _job_rows(page),
            "assistant": services.assistant_state(actor(request), now=now()),
        },
    )


def _job_rows(page: Page[Job]) -> SafeString:
    """The rows of a page of Traitements distants, read as columns in one query."""
    listed = page.object_list.values_list(  # type: ignore[attr-defined]
        "id", "kind", "params", "workstation__name", "started_at", "finished_at", "state",
        "result", "message",
    )  # fmt: skip
    url = escape(reverse("assistants:jobs"))  # one reverse, not fifty
    kinds = {value: str(label) for value, label in Job.Kind.choices}
    states = {value: str(label) for value, label in Job.State.choices}
    rows = []
    for job_id, kind, params, workstation, started, finished, state, result, message in listed:
        named = [kinds.get(kind, kind)]
        if isinstance(params, dict):
            named += [str(params[k]) for k in ("designation", "reference") if params.get(k)]
        rows.append(
            (
                mark_safe(f'<a href="{url}{job_id}/">{escape(" — ".join(named))}</a>'),  # noqa: S308
                workstation,
                "—" if started is None else shown_time(started, JOB_TIME),
                "—" if finished is None else shown_time(finished, JOB_TIME),
                Cell(f"state-{state}", states.get(state, state)),
                spoken(result, message),
            )
        )
    return table_rows(rows)


@agent_page
def job(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    """One job, followed until it ends (htmx asks for its fragment every 2 seconds)."""
    found = services.job_for(actor(request), job_id)
    template = "assistants/job_state.html" if request.htmx else "assistants/job.html"  # type: ignore[attr-defined]
    return render(
        request,
        template,
        {
            "section": "jobs",
            "job": found,
            "assistant": services.assistant_state(actor(request), now=now()),
        },
    )


@agent_page
def state(request: HttpRequest) -> HttpResponse:
    """The banner "État de l'assistant Scellé", refreshed in place."""
    return render(
        request,
        "web/assistant_banner.html",
        {"assistant": services.assistant_state(actor(request), now=now())},
    )
