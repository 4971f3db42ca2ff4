from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "apps.live"
    verbose_name = "celery-live"

    def ready(self) -> None:
        # Connect the Celery signal handlers in every process that loads Django:
        # web (publishes task.sent), worker and beat. CELERY_LIVE_INSTRUMENT=0 leaves
        # Celery untouched (the worker-overhead benchmark compares both).
        from django.conf import settings

        if settings.CELERY_LIVE_INSTRUMENT:
            from . import signals  # noqa: F401
