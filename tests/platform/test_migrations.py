"""The committed migrations match the models."""

from __future__ import annotations

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.django_db, pytest.mark.platform]


def test_models_and_migrations_agree() -> None:
    # --check exits non-zero when a model change has no migration yet.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
