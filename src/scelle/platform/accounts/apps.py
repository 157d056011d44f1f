from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "scelle.platform.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"
