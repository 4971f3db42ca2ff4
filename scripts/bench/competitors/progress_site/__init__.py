"""A minimal Django project that shows a celery-progress bar, as its README sets one up."""

from .celery_app import app as celery_app

__all__ = ("celery_app",)
