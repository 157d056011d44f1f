"""Pages: Traitements distants (the agent's jobs) and the assistant's state banner."""

from __future__ import annotations

import uuid

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from scelle.platform.assistants import services
from scelle.platform.clock import now
from scelle.platform.web.pages import PER_PAGE, actor, agent_page


@agent_page
def jobs(request: HttpRequest) -> HttpResponse:
    """Traitements distants, newest first: kind, start, end, state, message."""
    return render(
        request,
        "assistants/jobs.html",
        {
            "section": "jobs",
            "page": Paginator(services.all_jobs_of(actor(request)), PER_PAGE).get_page(
                request.GET.get("page")
            ),
            "jobs_url": reverse("assistants:jobs"),  # row links: one reverse, not fifty
            "assistant": services.assistant_state(actor(request), now=now()),
        },
    )


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
