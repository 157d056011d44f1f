"""Pages: Consultations — list, create, a tender's page, Lancer, Clôturer, Ouvrir les plis;
and the companies' side: the tenders open to them.

Deadlines are typed and shown in the platform's time zone (settings.TIME_ZONE).
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections import defaultdict
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from scelle.core.clock import placed_in
from scelle.core.errors import N_, PermissionDeniedError
from scelle.platform.accounts.models import Permission, Service, User
from scelle.platform.accounts.services import services_with
from scelle.platform.assistants import services as assistants
from scelle.platform.clock import now
from scelle.platform.deposits.models import Deposit, Envelope
from scelle.platform.deposits.services import committed_bidders
from scelle.platform.opening import commission
from scelle.platform.opening.services import register_of
from scelle.platform.tenders import services, testing
from scelle.platform.tenders.models import ENVELOPE_KINDS, Tender
from scelle.platform.web.pages import (
    PER_PAGE,
    actor,
    agent_page,
    attempt,
    company_page,
    envelope_size,
    shown_time,
    table_rows,
)


def local_deadline(day: dt.date, time: dt.time) -> dt.datetime:
    """A date and time typed in the platform's zone, as an aware moment; a time that the
    clocks skip or repeat that day is refused rather than guessed."""
    moment = placed_in(dt.datetime.combine(day, time), zoneinfo.ZoneInfo(settings.TIME_ZONE))
    if moment is None:
        raise forms.ValidationError(
            _("%(time)s does not exist once on %(day)s in %(zone)s (a clock change): choose "
              "another time.") % {"time": time, "day": day, "zone": settings.TIME_ZONE}
        )  # fmt: skip
    return moment


class TenderForm(forms.Form):
    service = forms.ChoiceField(label=gettext_lazy("Service"))
    reference = forms.CharField(label=gettext_lazy("Reference"), max_length=64)
    title = forms.CharField(label=gettext_lazy("Title"), max_length=services.MAX_TITLE_LENGTH)
    deadline_day = forms.DateField(
        label=gettext_lazy("Deadline: day"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    deadline_time = forms.TimeField(
        label=gettext_lazy("Deadline: time"),
        widget=forms.TimeInput(attrs={"type": "time", "step": 1}, format="%H:%M:%S"),
        help_text=gettext_lazy("In the platform's time zone (%(zone)s).")
        % {"zone": settings.TIME_ZONE},
    )
    envelopes = forms.MultipleChoiceField(
        label=gettext_lazy("Envelopes"),
        widget=forms.CheckboxSelectMultiple,
        choices=[(kind, kind) for kind in ENVELOPE_KINDS],
        initial=["candidature", "offre"],
    )

    def __init__(self, *args: object, services_: list[Service], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = cast("forms.ChoiceField", self.fields["service"])
        field.choices = [(str(service.id), service.name) for service in services_]

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        day, time = cleaned.get("deadline_day"), cleaned.get("deadline_time")
        if isinstance(day, dt.date) and isinstance(time, dt.time):
            try:
                cleaned["deadline"] = local_deadline(day, time)
            except forms.ValidationError as error:
                self.add_error("deadline_time", error)
        return cleaned


@agent_page
def tender_list(request: HttpRequest) -> HttpResponse:
    """Consultations: the tenders of the agent's services, latest deadline first."""
    found = services.visible_tenders(actor(request)).order_by("-deadline", "reference")
    page = Paginator(found, PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "tenders/list.html",
        {
            "section": "tenders",
            "page": page,
            "rows": _tender_rows(page),
            "can_create": bool(services_with(actor(request), Permission.Name.MANAGE_TENDERS)),
        },
    )


def _tender_rows(page: Page[Tender]) -> SafeString:
    """The rows of a page of the tenders list, read as columns in one query."""
    listed = page.object_list.values_list(  # type: ignore[attr-defined]
        "id", "reference", "title", "service__name", "deadline", "status"
    )
    url = escape(reverse("tenders:list"))  # one reverse, not fifty
    labels = {value: str(label) for value, label in Tender.Status.choices}
    return table_rows(
        (
            mark_safe(f'<a href="{url}{tender_id}/">{escape(reference)}</a>'),  # noqa: S308
            title,
            service,
            shown_time(deadline),
            labels[status],
        )
        for tender_id, reference, title, service, deadline, status in listed
    )


@agent_page
def create_tender(request: HttpRequest) -> HttpResponse:
    """A new draft tender."""
    mine = services_with(actor(request), Permission.Name.MANAGE_TENDERS)
    if not mine:
        raise PermissionDeniedError(N_("no service where you manage tenders"))
    form = TenderForm(request.POST or None, services_=mine)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        tender = attempt(
            request,
            lambda: services.create_tender(
                actor(request),
                service_id=data["service"],
                reference=data["reference"],
                title=data["title"],
                deadline=data["deadline"],
                envelopes=data["envelopes"],
                now=now(),
            ),
        )
        if tender is not None:
            return redirect("tenders:detail", tender.id)
    return render(request, "tenders/create.html", {"section": "tenders", "form": form})


@agent_page
def tender_detail(request: HttpRequest, tender_id: uuid.UUID) -> HttpResponse:
    """A tender: state, deadline and time left, key pairs, the deposits register."""
    user = actor(request)
    tender = services.tender_for(user, str(tender_id))
    can = services.abilities(user, tender, now=now())
    deposits = (
        Paginator(register_of(user, tender), PER_PAGE).get_page(request.GET.get("page"))
        if can.see_deposits
        else None
    )
    committed = committed_bidders(tender) if deposits is not None else set()
    return render(
        request,
        "tenders/detail.html",
        {
            "section": "tenders",
            "tender": tender,
            "can": can,
            **services.keys_facts(tender, agent=True),
            "commission": _commission_facts(user, tender, can),
            "deposits": deposits,
            "register": None if deposits is None else register_rows(deposits, committed),
            "opening_window_ends": services.opening_window_end(tender),
        },
    )


def register_rows(page: Page[Deposit], committed: set[uuid.UUID]) -> SafeString:
    """The rows of a page of the deposits register, as HTML (each value escaped): read as
    columns in two queries and written here, several times cheaper than the template
    language's loop over model instances for a register of 50 rows."""
    deposits = list(
        page.object_list.values_list(  # type: ignore[attr-defined]
            "id", "bidder__name", "received_at", "late", "by_grace", "commitment_id",
            "bidder_id", "withdrawal__id",
        )
    )  # fmt: skip
    envelopes: dict[uuid.UUID, list[str]] = defaultdict(list)
    found = Envelope.objects.filter(deposit_id__in=[row[0] for row in deposits])
    for deposit_id, kind, size in found.order_by("id").values_list("deposit_id", "kind", "size"):
        envelopes[deposit_id].append(envelope_size(kind, size))
    yes, no, withdrawn, grace = _("yes"), _("no"), _("withdrawn"), _("on time (grace window)")
    matches, differs, none = (
        _("matches its commitment"), _("differs from its commitments"), _("none")
    )  # fmt: skip
    rows = []
    for deposit_id, bidder, received, late, by_grace, commitment, bidder_id, withdrawal in deposits:
        state = withdrawn if withdrawal else yes if late else grace if by_grace else no
        told = matches if commitment else differs if bidder_id in committed else none
        sizes = mark_safe(", ".join(envelopes[deposit_id]))  # noqa: S308 - each one escaped
        rows.append((bidder, shown_time(received), sizes, state, told))
    return table_rows(rows)


def _commission_facts(
    user: User, tender: Tender, can: services.TenderAbilities
) -> dict[str, Any] | None:
    """The commission's opening as the tender's page shows it: who opens, who took part and
    when; whether this agent, a member, may take part now."""
    if tender.commission_threshold is None or not can.see_deposits:
        return None
    state = commission.opening_state(user, str(tender.id))
    mine = [m for m in state.members if m.member.holder_id == user.id]
    return {
        "state": state,
        "can_take_part": bool(
            state.opening and mine and not mine[0].opener and mine[0].joined_at is None
        ),
        "member": bool(mine),
    }


@agent_page
def launch_tender(request: HttpRequest, tender_id: uuid.UUID) -> HttpResponse:
    """Lancer: choose personal key pairs, or a commission's members and how many of them
    must take part to open; the service's backup key pairs are added; the agent confirms
    that the assignment is definitive."""
    user = actor(request)
    tender = services.tender_for(user, str(tender_id), Permission.Name.MANAGE_TENDERS)
    personal, backup = services.launch_choices(tender)
    chosen = request.POST.getlist("key_pairs")
    by_commission = request.POST.get("opening") == "commission"
    threshold = _threshold(request.POST.get("threshold", ""))
    if request.method == "POST":
        # Every missing answer at once, not one per attempt.
        if not chosen:
            messages.error(request, _("Choose at least one personal key pair."))
        if by_commission and threshold is None:
            messages.error(request, _("Say how many members must take part to open (2 or more)."))
        if not request.POST.get("definitive"):
            messages.error(request, _("Confirm that you understand the assignment is definitive."))
        if chosen and request.POST.get("definitive") and (threshold or not by_commission):
            designations = [k.designation for k in personal if str(k.id) in chosen]
            launched = attempt(
                request, lambda: services.launch_tender(
                    user, str(tender.id), designations,
                    commission_threshold=threshold if by_commission else None, now=now(),
                ),
            )  # fmt: skip
            if launched is not None:
                messages.success(
                    request,
                    _("The tender %(reference)s is published; its key pairs are definitive.")
                    % {"reference": launched.reference},
                )
                return redirect("tenders:detail", tender.id)
    return render(
        request,
        "tenders/launch.html",
        {
            "section": "tenders",
            "tender": tender,
            "personal": personal,
            "backup": backup,
            "chosen": chosen,
            "by_commission": by_commission,
            "threshold": request.POST.get("threshold", "2"),
            "until": services.opening_window_end(tender),
        },
    )


def _threshold(value: str) -> int | None:
    """k as typed in the page; None when it is not a number of 2 to 255."""
    try:
        number = int(value.strip())
    except ValueError:
        return None
    return number if 2 <= number <= 255 else None


@agent_page
def close_tender(request: HttpRequest, tender_id: uuid.UUID) -> HttpResponse:
    """Clôturer: says what closing means and asks to confirm; closes on the confirmation
    (after the deadline, or a draft at any time)."""
    user = actor(request)
    tender = services.tender_for(user, str(tender_id), Permission.Name.MANAGE_TENDERS)
    if request.method == "POST":
        done = attempt(request, lambda: services.close_tender(user, str(tender.id), now=now()))
        if done is not None:
            messages.success(
                request, _("The tender %(reference)s is closed.") % {"reference": done.reference}
            )
        return redirect("tenders:detail", tender.id)
    return render(
        request,
        "tenders/close.html",
        {
            "section": "tenders",
            "tender": tender,
            "can": services.abilities(user, tender, now=now()),
        },
    )


@agent_page
def take_part(request: HttpRequest, tender_id: uuid.UUID) -> HttpResponse:
    """Prendre part: a member's consent to the commission's opening, a job for their
    assistant, followed on its page."""
    user = actor(request)
    if request.method == "POST":
        job = attempt(
            request, lambda: assistants.request_take_part(user, str(tender_id), now=now())
        )
        if job is not None:
            return redirect("assistants:job", job.id)
    return redirect("tenders:detail", tender_id)


@agent_page
def open_tender(request: HttpRequest, tender_id: uuid.UUID) -> HttpResponse:
    """Ouvrir les plis: a job for the agent's assistant, followed on its page."""
    user = actor(request)
    if request.method == "POST":
        job = attempt(request, lambda: assistants.request_opening(user, str(tender_id), now=now()))
        if job is not None:
            return redirect("assistants:job", job.id)
    return redirect("tenders:detail", tender_id)


# --- companies ----------------------------------------------------------------------


@company_page
def open_to_me(request: HttpRequest) -> HttpResponse:
    """The tenders a company may answer (launched, deadline ahead first; the test tender
    at the top, where a newcomer sees it)."""
    found = services.visible_tenders(actor(request)).order_by("-is_test", "deadline", "reference")
    return render(
        request, "tenders/open_to_me.html", {"section": "tenders", "tenders": list(found[:500])}
    )


@company_page
def company_tender(request: HttpRequest, tender_id: uuid.UUID) -> HttpResponse:
    """A tender as a company sees it: deadline, envelopes, key pairs, how to deposit."""
    tender = services.tender_for(actor(request), str(tender_id))
    return render(
        request,
        "tenders/company_detail.html",
        {
            "section": "tenders",
            "tender": tender,
            **services.keys_facts(tender, agent=False),
            "open": services.takes_deposits(tender, now=now()),
            "platform_url": request.build_absolute_uri("/").rstrip("/"),
            **testing.page_facts(),
        },
    )
