"""The platform's URLs: the JSON API under /api/ (its OpenAPI document at /api/openapi.json)."""

from __future__ import annotations

from django.urls import path

from scelle.platform.api import api

urlpatterns = [path("api/", api.urls)]
