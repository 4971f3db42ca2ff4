"""The Django app: installing it connects the worker side to Celery in every process."""

from django.apps import AppConfig


class CeleryLiveConfig(AppConfig):
    name = "celery_live"
    verbose_name = "celery-live"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connect the Celery signal handlers in every process that loads Django:
        # web (publishes task.sent), worker and beat. CELERY_LIVE_INSTRUMENT=0 leaves
        # Celery untouched (the worker-overhead benchmark compares both).
        from celery_live.conf import conf

        if conf.INSTRUMENT:
            from celery_live.worker import signals  # noqa: F401
