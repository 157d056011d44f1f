from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "scelle.platform.web"
    label = "web"
