"""Schemathesis hooks (SCHEMATHESIS_HOOKS=tests.e2e.schemathesis_hooks): a tus chunk's
body, application/offset+octet-stream, is sent as raw bytes like any octet stream."""

import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
