"""Pages: Connexion and Déconnexion (Django sessions, the same accounts and throttling
as the API's tokens); Habilitations (agents who administer a service manage its agents)."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import auth, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from scelle.core.errors import NotAuthenticatedError, TooManyAttemptsError
from scelle.platform.accounts import services
from scelle.platform.accounts.models import Permission
from scelle.platform.clock import now
from scelle.platform.web.pages import PAGE_TOKENS_KEY, actor, agent_page, attempt


class LoginForm(forms.Form):
    email = forms.EmailField(
        label=_("E-mail address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label=_("Password"),
        max_length=1024,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


def login_page(request: HttpRequest) -> HttpResponse:
    """Connexion."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(wanted, {request.get_host()}, require_https=False):
        wanted = ""
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        client = services.client_of(request.META.get("REMOTE_ADDR", ""))
        try:
            user = services.check_credentials(
                form.cleaned_data["email"], form.cleaned_data["password"], client=client, now=now()
            )
        except NotAuthenticatedError:
            messages.error(request, _("Wrong e-mail address or password."))
            status = 401
        except TooManyAttemptsError as error:
            messages.error(
                request,
                _("Too many failed logins from here: try again in %(seconds)s seconds.")
                % {"seconds": error.retry_after},
            )
            status = 429
        else:
            # A new session id at login: a session fixed before it is worth nothing.
            auth.login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(wanted or "web:home")
    return render(request, "accounts/login.html", {"form": form, "next": wanted}, status=status)


@require_POST
def logout_page(request: HttpRequest) -> HttpResponse:
    """Déconnexion: the session ends, and the tokens its pages were given."""
    if request.user.is_authenticated:
        services.revoke_prefixes(
            actor(request),
            request.session.get(PAGE_TOKENS_KEY, []),
            now=now(),
        )
    auth.logout(request)
    return redirect("web:login")


# --- Habilitations ------------------------------------------------------------------


class AgentForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"), max_length=254)
    password = forms.CharField(
        label=_("First password"),
        max_length=1024,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("Give it to the agent by another channel; at least 12 characters."),
    )


@agent_page
def habilitations(request: HttpRequest) -> HttpResponse:
    """The organisation's agents and their permissions on the services one administers."""
    user = actor(request)
    form = AgentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        created = attempt(
            request,
            lambda: services.create_agent(
                user, form.cleaned_data["email"], form.cleaned_data["password"], now=now()
            ),
        )
        if created is not None:
            messages.success(
                request, _("The agent %(email)s was created.") % {"email": created.email}
            )
            return redirect("web:habilitations")
    administered, entries = services.organisation_agents(user)
    labels = dict(Permission.Name.choices)
    rows = [
        (
            entry,
            [
                (
                    service,
                    [
                        (name, labels[name])
                        for name in sorted(entry.permissions.get(service.id, ()))
                    ],
                )
                for service in administered
            ],
        )
        for entry in entries
    ]
    return render(
        request,
        "accounts/habilitations.html",
        {
            "section": "habilitations",
            "services": administered,
            "rows": rows,
            "form": form,
            "permission_names": Permission.Name.choices,
        },
    )


@agent_page
@require_POST
def change_habilitation(request: HttpRequest, user_id: uuid.UUID) -> HttpResponse:
    """Grant or revoke one permission, or deactivate the agent."""
    user = actor(request)
    action = request.POST.get("action", "")
    if action == "deactivate":
        done = attempt(request, lambda: services.deactivate_agent(user, user_id, now=now()))
        if done is not None:
            messages.success(
                request, _("The agent %(email)s is deactivated.") % {"email": done.email}
            )
    elif action in ("grant", "revoke"):
        changed = attempt(
            request,
            lambda: services.change_permission(
                user, user_id, request.POST.get("service", ""), request.POST.get("permission", ""),
                granted=action == "grant", now=now(),
            ),
        )  # fmt: skip
        if changed is not None:
            messages.success(
                request, _("The permissions of %(email)s were changed.") % {"email": changed.email}
            )
    return redirect("web:habilitations")
