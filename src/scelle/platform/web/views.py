"""Pages of the layout: the way in, the dashboard, the refusals."""

from __future__ import annotations

import sys

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from scelle.platform.accounts.models import Permission
from scelle.platform.accounts.services import services_held
from scelle.platform.answers import BUSY_SECONDS, busy_body, error_body
from scelle.platform.assistants import services as assistants
from scelle.platform.clock import now
from scelle.platform.deposits.objectstore import StoreUnavailableError
from scelle.platform.opening import commission
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
    services = services_held(user)
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
            "commission_requests": commission.pending_for(user),
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


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500, called while the failure is being handled: a database that is
    locked, down or restarting, or an object store failing, is a 503 with Retry-After,
    which the client may simply send again (the failed transaction was rolled back
    whole); anything else a 500. Both
    in JSON, on every route: no page of Django's own, no traceback."""
    if isinstance(sys.exc_info()[1], (DatabaseError, StoreUnavailableError)):
        busy = JsonResponse(busy_body(), status=503)
        busy["Retry-After"] = str(BUSY_SECONDS)
        return busy
    failed = error_body(_("the platform failed to answer this request; the failure was logged"))
    return JsonResponse(failed, status=500)
