"""Pages: Connexion and Déconnexion (Django sessions, the same accounts and throttling
as the API's tokens)."""

from __future__ import annotations

from django import forms
from django.contrib import auth, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from scelle.core.errors import NotAuthenticatedError, TooManyAttemptsError
from scelle.platform.accounts import services
from scelle.platform.clock import now


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
    """Déconnexion: the session ends."""
    auth.logout(request)
    return redirect("web:login")
