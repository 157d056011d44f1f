from django.apps import AppConfig


class AssistantsConfig(AppConfig):
    name = "scelle.platform.assistants"
    label = "assistants"
    default_auto_field = "django.db.models.BigAutoField"
