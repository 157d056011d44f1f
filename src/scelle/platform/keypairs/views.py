"""Pages: Administration › Service › Clés de chiffrement (the seed guide's section B).

Adding a key pair is a job for the agent's assistant: the key pair is made (or
found) in the workstation's store, and only its certificate reaches here.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from scelle.core.errors import N_, PermissionDeniedError
from scelle.platform.accounts.models import Permission
from scelle.platform.accounts.services import service_for, services_with
from scelle.platform.assistants import services as assistants
from scelle.platform.clock import now
from scelle.platform.keypairs import services
from scelle.platform.keypairs.models import KeyPair
from scelle.platform.web.pages import Cell, actor, agent_page, attempt, shown_time, table_rows
from scelle.platform.web.templatetags.scelle_tags import breakable


@agent_page
def key_page(request: HttpRequest, service_id: uuid.UUID | None = None) -> HttpResponse:
    """Clés de chiffrement of one service: personal and backup key pairs, warnings."""
    mine = services_with(actor(request), Permission.Name.MANAGE_KEYS)
    if service_id is None:
        chosen = [s for s in mine if str(s.id) == request.GET.get("service")]
        if chosen:
            return redirect("keypairs:service", chosen[0].id)
        if not mine:
            raise PermissionDeniedError(N_("no service where you manage key pairs"))
        return redirect("keypairs:service", mine[0].id)
    service = service_for(actor(request), service_id, Permission.Name.MANAGE_KEYS)
    found = services.registry(actor(request), service_id=service.id, now=now())
    return render(
        request,
        "keypairs/key_page.html",
        {
            "section": "keys",
            "service": service,
            "services": mine,
            "personal": _key_rows(found.entries, KeyPair.Role.PERSONAL),
            "backup": _key_rows(found.entries, KeyPair.Role.BACKUP),
            "warnings": found.warnings,
            "assistant": assistants.assistant_state(actor(request), now=now()),
        },
    )


def _key_rows(entries: list[services.RegistryEntry], role: str) -> SafeString:
    """The rows of the key pairs of `role` on the key page, written here: the template
    language's loop was most of the page's time with 50 key pairs (bench/web.py)."""
    url = escape(reverse("keypairs:page"))  # row links: one reverse, not fifty
    edit, delete, on_token = escape(_("Edit")), escape(_("Delete")), escape(_("on a token"))
    token_title = escape(
        _("Its private key lives on a smart card or an HSM, which it cannot leave.")
    )
    rows = []
    for entry in entries:
        key_pair = entry.key_pair
        if key_pair.role != role:
            continue
        name, link = escape(key_pair.designation), f"{url}{key_pair.id}/"
        tag = (
            f' <span class="tag" title="{token_title}">{on_token}</span>'
            if key_pair.on_token
            else ""
        )
        hidden = f'<span class="visually-hidden"> {name}</span>'
        rows.append(
            (
                mark_safe(f"{name}{tag}"),  # noqa: S308 - escaped above
                key_pair.common_name,
                shown_time(key_pair.not_after, "DATE_FORMAT"),
                ", ".join(entry.open_tenders) or "—",
                Cell("fingerprint", breakable(key_pair.fingerprint_sha256)),
                mark_safe(  # noqa: S308 - escaped above
                    f'<a href="{link}modifier/">{edit}{hidden}</a>'
                    f' · <a href="{link}supprimer/">{delete}{hidden}</a>'
                ),
            )
        )
    return table_rows(rows)


class AddKeyPairForm(forms.Form):
    designation = forms.CharField(
        label=gettext_lazy("Designation of the key pair in the tender room"),
        max_length=services.MAX_DESIGNATION_LENGTH,
    )
    backup = forms.BooleanField(
        label=gettext_lazy("Set as a backup encryption key pair"), required=False
    )
    mode = forms.ChoiceField(
        label=gettext_lazy("Key pair"),
        widget=forms.RadioSelect,
        choices=[
            (
                "generate",
                gettext_lazy(
                    "Generate a new key pair, and import it into the certificate store "
                    "of this workstation"
                ),
            ),
            (
                "reference",
                gettext_lazy(
                    "Reference in the tender room a key pair that already exists in the "
                    "certificate store of this workstation"
                ),
            ),
        ],
        initial="generate",
    )
    existing = forms.ChoiceField(
        label=gettext_lazy("Key pair of this workstation's store"), required=False
    )
    common_name = forms.CharField(
        label=gettext_lazy("CN – Common Name"),
        max_length=64,
        required=False,
        help_text=gettext_lazy("By default, the designation."),
    )

    def __init__(self, *args: object, reported: list[dict[str, Any]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = cast("forms.ChoiceField", self.fields["existing"])
        field.choices = [("", "—")] + [
            (
                entry["fingerprint_sha256"],
                f"{entry['name']} (CN {entry['common_name']}, "
                f"{_('expires')} {entry['not_after'][:10]})"
                + (f" — {_('on a token')}" if entry.get("on_token") else ""),
            )
            for entry in reported
        ]

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        if cleaned.get("mode") == "reference" and not cleaned.get("existing"):
            self.add_error("existing", _("Choose the key pair of the store to reference."))
        return cleaned


@agent_page
def add_key_pair(request: HttpRequest, service_id: uuid.UUID) -> HttpResponse:
    """Ajouter un bi-clé: a job for the agent's assistant, followed on its own page."""
    user = actor(request)
    service = service_for(user, service_id, Permission.Name.MANAGE_KEYS)
    state = assistants.assistant_state(user, now=now())
    reported = state.workstation.key_pairs if state.workstation is not None else []
    initial = {"backup": request.GET.get("role") == "backup"}
    form = AddKeyPairForm(request.POST or None, initial=initial, reported=reported)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        job = attempt(
            request,
            lambda: assistants.request_key_pair(
                user,
                service_id=service.id,
                designation=data["designation"],
                backup=data["backup"],
                common_name=data["common_name"] or None,
                reference=data["existing"] if data["mode"] == "reference" else None,
                now=now(),
            ),
        )
        if job is not None:
            return redirect("assistants:job", job.id)
    return render(
        request,
        "keypairs/add.html",
        {"section": "keys", "service": service, "form": form, "assistant": state},
    )


class RenameForm(forms.Form):
    designation = forms.CharField(
        label=gettext_lazy("New designation"), max_length=services.MAX_DESIGNATION_LENGTH
    )


@agent_page
def rename_key_pair(request: HttpRequest, key_pair_id: uuid.UUID) -> HttpResponse:
    """Modifier: a new designation; the certificate and the tenders' assignments stay."""
    user = actor(request)
    key_pair = services.key_pair_for(user, key_pair_id, Permission.Name.MANAGE_KEYS)
    form = RenameForm(request.POST or None, initial={"designation": key_pair.designation})
    if request.method == "POST" and form.is_valid():
        new = form.cleaned_data["designation"]
        done = attempt(request, lambda: services.rename_key_pair(user, key_pair.id, new, now=now()))
        if done is not None:
            messages.success(
                request,
                _("The key pair is now designated %(designation)s.")
                % {"designation": done.designation},
            )
            return redirect("keypairs:service", key_pair.service_id)
    return render(
        request, "keypairs/rename.html", {"section": "keys", "key_pair": key_pair, "form": form}
    )


@agent_page
def delete_key_pair(request: HttpRequest, key_pair_id: uuid.UUID) -> HttpResponse:
    """Supprimer: asks to confirm; refused, naming them, while tenders not closed use it."""
    user = actor(request)
    key_pair = services.key_pair_for(user, key_pair_id, Permission.Name.MANAGE_KEYS)
    if request.method == "POST":
        done = attempt(request, lambda: services.delete_key_pair(user, key_pair.id, now=now()))
        if done is not None:
            messages.success(
                request,
                _("The key pair %(designation)s was removed from the tender room.")
                % {"designation": done.designation},
            )
        return redirect("keypairs:service", key_pair.service_id)
    using = services.open_tenders_using([key_pair.id])[key_pair.id]
    return render(
        request,
        "keypairs/delete.html",
        {"section": "keys", "key_pair": key_pair, "using": using},
    )
