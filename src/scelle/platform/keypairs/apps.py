from django.apps import AppConfig


class KeypairsConfig(AppConfig):
    name = "scelle.platform.keypairs"
    label = "keypairs"
    default_auto_field = "django.db.models.BigAutoField"
