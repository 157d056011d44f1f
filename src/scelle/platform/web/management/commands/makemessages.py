"""`makemessages` that also finds the messages of errors, marked `N_(...)` (scelle.core.errors):
they are translated where they are shown, not where they are raised."""

from __future__ import annotations

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    xgettext_options = [*makemessages.Command.xgettext_options, "--keyword=N_"]  # noqa: RUF012
