from django.apps import AppConfig


class TendersConfig(AppConfig):
    name = "scelle.platform.tenders"
    label = "tenders"
    default_auto_field = "django.db.models.BigAutoField"
