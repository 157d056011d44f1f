"""What every page's layout needs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def layout(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    signed_in = bool(user is not None and user.is_authenticated)
    return {
        "platform_name": settings.SCELLE_PLATFORM_NAME,
        "signed_in": signed_in,
        "is_agent": signed_in and user.is_agent,  # type: ignore[union-attr]
    }
