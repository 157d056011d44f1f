"""Pages of the layout: the way in, the dashboard, the refusals."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from scelle.platform.accounts.models import Permission, Service
from scelle.platform.assistants import services as assistants
from scelle.platform.clock import now
from scelle.platform.tenders.models import Tender
from scelle.platform.tenders.services import visible_tenders
from scelle.platform.web.pages import actor, agent_page


def home(request: HttpRequest) -> HttpResponse:
    """`/`: Connexion, or the user's first page."""
    if not request.user.is_authenticated:
        return redirect("web:login")
    return redirect("web:dashboard" if actor(request).is_agent else "tenders:open_to_me")


@agent_page
def dashboard(request: HttpRequest) -> HttpResponse:
    """Tableau de bord: the agent's services, tenders in progress, the assistant's state."""
    user = actor(request)
    held: dict[object, list[str]] = {}
    for service_id, name in Permission.objects.filter(user=user).values_list("service_id", "name"):
        held.setdefault(service_id, []).append(name)
    services = [
        (service, sorted(held[service.id]))
        for service in Service.objects.filter(id__in=held).order_by("name")
    ]
    in_progress = visible_tenders(user).filter(status=Tender.Status.PUBLISHED).order_by("deadline")
    return render(
        request,
        "web/dashboard.html",
        {
            "section": "dashboard",
            "services": services,
            "tenders": list(in_progress[:50]),
            "assistant": assistants.assistant_state(user, now=now()),
            "permission_names": dict(Permission.Name.choices),
        },
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without its CSRF token (or from another site): said plainly."""
    return render(
        request,
        "web/refused.html",
        {"message": _("This form expired or did not come from this platform: send it again.")},
        status=403,
    )
