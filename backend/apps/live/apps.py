from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "apps.live"
    verbose_name = "celery-live"

    def ready(self) -> None:
        # Connect the Celery signal handlers in every process that loads Django:
        # web (publishes task.sent), worker and beat.
        from . import signals  # noqa: F401
