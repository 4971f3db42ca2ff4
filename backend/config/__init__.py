"""Django project `config`; loads the Celery app with Django (as in the seed)."""

from .celery import app as celery_app

__all__ = ("celery_app",)
