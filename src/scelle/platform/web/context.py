"""What every page's layout needs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from scelle.platform.accounts.models import Permission


def layout(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    signed_in = bool(user is not None and user.is_authenticated)
    is_agent = signed_in and user.is_agent  # type: ignore[union-attr]
    return {
        "platform_name": settings.SCELLE_PLATFORM_NAME,
        "signed_in": signed_in,
        "is_agent": is_agent,
        # One query: the Habilitations link shows to agents who administer a service.
        "administers": is_agent
        and Permission.objects.filter(user=user, name=Permission.Name.ADMINISTER).exists(),
    }
