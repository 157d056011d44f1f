from django.apps import AppConfig


class TransparencyConfig(AppConfig):
    name = "scelle.platform.transparency"
    label = "transparency"
    default_auto_field = "django.db.models.BigAutoField"
