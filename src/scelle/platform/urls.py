"""The platform's URLs: the pages (scelle.platform.web.urls), the JSON API under /api/
(its OpenAPI document at /api/openapi.json, its documentation at /api/docs) and the tus
upload routes under /api/uploads/, the transparency log under /log/."""

from __future__ import annotations

from django.urls import include, path

from scelle.platform.api import api
from scelle.platform.deposits import tus
from scelle.platform.transparency import views as log

urlpatterns = [
    # Resumable uploads speak tus, not JSON: plain views beside the API.
    path("api/uploads/", tus.uploads),
    path("api/uploads/<str:upload_id>", tus.upload),
    path("api/", api.urls),
    # The transparency log, as static-like resources (c2sp.org/tlog-tiles).
    path("log/checkpoint", log.checkpoint),
    path("log/key", log.key),
    path("log/tile/<path:path>", log.tile),
    path("log/witnessed", log.witnessed),
    path("log/cosignature", log.cosignature),
    path("", include("scelle.platform.web.urls")),
]

# A failure (a busy database included: 503) answers in JSON, see web.views.server_error.
handler500 = "scelle.platform.web.views.server_error"
