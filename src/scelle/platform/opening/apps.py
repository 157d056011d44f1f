from django.apps import AppConfig


class OpeningConfig(AppConfig):
    """No model of its own: the opening reads deposits; its pages' templates live here."""

    name = "scelle.platform.opening"
    label = "opening"
