"""Shapes shared by every router: the error body and the statuses routes document."""

from __future__ import annotations

from typing import Any

from ninja import Schema


class ErrorOut(Schema):
    detail: str
    """What went wrong, in the user's words."""
    hint: str | None = None
    """What the user can do about it, when we know."""


def responses(ok: dict[int, Any], *errors: int) -> dict[int, Any]:
    """`ok` plus the error statuses of a route: 400 (unreadable body), 401 and 422 always."""
    return {**ok, **{status: ErrorOut for status in (400, 401, 422, *errors)}}
