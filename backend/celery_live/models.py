"""Django finds an app's models here; they live with the runs (`celery_live.runs.models`)."""

from celery_live.runs.models import Event, Run

__all__ = ["Event", "Run"]
