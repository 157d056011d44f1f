"""Models whose rows are written once: the audit log, a tender's definitive key pairs.

The model refuses save() on an existing row and delete(); its queryset refuses
update() and delete(); a database trigger (triggers.py) refuses UPDATE from
any other code. Each model says why in `REFUSAL`.
"""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn

from django.db import models

from scelle.core.errors import RuleViolationError


class InsertOnlyQuerySet(models.QuerySet[Any]):
    def update(self, **kwargs: Any) -> NoReturn:  # noqa: ANN401 - Django's signature
        raise RuleViolationError(self.model.REFUSAL)

    def delete(self) -> NoReturn:
        raise RuleViolationError(self.model.REFUSAL)


class InsertOnlyModel(models.Model):
    REFUSAL: ClassVar[str] = "these records are never changed or deleted"

    objects = InsertOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401 - passed through
        if not self._state.adding:
            raise RuleViolationError(self.REFUSAL)
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:  # noqa: ANN401 - passed through
        raise RuleViolationError(self.REFUSAL)
