"""Logging in and out: Django's own views, in the dashboard's look.

The host's `LOGIN_URL` names the login page (`"celery_live:login"`, or the host's own);
after logging in a user goes where `?next=` says, else to the dashboard.
"""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import reverse_lazy

login = auth_views.LoginView.as_view(
    template_name="celery_live/login.html", next_page=reverse_lazy("celery_live:index")
)
# POST only (Django 5): the header's button sends a form with its CSRF token.
logout = auth_views.LogoutView.as_view(next_page=reverse_lazy("celery_live:login"))
