from django.apps import AppConfig


class OpeningConfig(AppConfig):
    """The opening reads deposits; its own models are a commission's opening (models.py)."""

    name = "scelle.platform.opening"
    label = "opening"
