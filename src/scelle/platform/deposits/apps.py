from django.apps import AppConfig


class DepositsConfig(AppConfig):
    name = "scelle.platform.deposits"
    label = "deposits"
    default_auto_field = "django.db.models.BigAutoField"
