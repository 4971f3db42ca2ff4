"""The standalone's Django app: the watched cluster's Celery app, made as Django starts."""

from __future__ import annotations

from celery import Celery
from django.apps import AppConfig


class StandaloneConfig(AppConfig):
    name = "celery_live.standalone"
    label = "celery_live_standalone"
    verbose_name = "celery-live standalone"

    def ready(self) -> None:
        # Every process (web, recorder, bridge) needs the cluster's app as Celery's default:
        # celery_live reaches it as `current_app` for control (revoke, ping), the queue
        # sampler and the reaper's result backend. `current_app` is per thread until a
        # default is set, and Daphne's views and the recorder run in threads.
        app = Celery("celery-live-standalone")
        app.config_from_object("django.conf:settings", namespace="CELERY")
        app.set_default()
        self.celery_app = app
