"""The dashboard's HTTP routes; a host includes them (`path("", include("celery_live.urls"))`)."""

from django.urls import include, path

from celery_live.web import accounts, health, views

app_name = "celery_live"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("accounts/login/", accounts.login, name="login"),
    path("accounts/logout/", accounts.logout, name="logout"),
    path("", views.index, name="index"),
    path("launch/", views.launch, name="launch"),
    path("runs/", views.runs_list, name="runs"),
    path("tasks/<str:task_id>/", views.task_page, name="task"),
    path("tasks/<str:task_id>/revoke", views.revoke_page, name="revoke"),
    path("tasks/<str:task_id>/rerun", views.rerun_page, name="rerun"),
    # The JSON API (api-tasks, api-task, api-revoke, api-rerun, api-schema, api-docs).
    path("", include("celery_live.api.urls")),
]
