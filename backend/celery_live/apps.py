"""The Django app: installing it connects the worker side to Celery in every process."""

from typing import Any

from django.apps import AppConfig

#: The worker bootstep that publishes heartbeats (worker/heartbeat.py).
HEARTBEAT_STEP = "celery_live.worker.heartbeat:LiveHeartbeat"


def add_heartbeat_step(sender: Any = None, **kwargs: Any) -> None:
    """`worker_init`: give the starting worker (`sender`) the heartbeat bootstep.

    A bootstep cannot be connected like a signal handler: it must be in the app's steps
    when the worker builds its blueprint, and `worker_init` comes just before that. Without
    heartbeats the reaper takes the worker for gone and marks its quiet runs LOST, so a
    host must not have to remember a line in its celery.py for them. (Steps are a set of
    these names: a host that adds it itself as well gets it once.)
    """
    app = getattr(sender, "app", None)
    if app is not None:
        app.steps["worker"].add(HEARTBEAT_STEP)


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
            from celery import signals as celery_signals

            from celery_live.worker import signals  # noqa: F401

            # A worker loads Django (Celery's Django fixup calls django.setup() as it
            # imports the task modules) before it sends worker_init: this is in time.
            celery_signals.worker_init.connect(add_heartbeat_step, dispatch_uid="celery_live.heartbeat_step")
