"""The dashboard's HTTP routes; a host includes them (`path("", include("celery_live.urls"))`)."""

from django.urls import path

from celery_live.web import health, views

app_name = "celery_live"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("", views.index, name="index"),
    path("launch/", views.launch, name="launch"),
    path("runs/", views.runs_list, name="runs"),
    path("tasks/<str:task_id>/", views.task_page, name="task"),
    path("tasks/<str:task_id>/revoke", views.revoke_page, name="revoke"),
    path("tasks/<str:task_id>/rerun", views.rerun_page, name="rerun"),
    path("api/tasks/", views.api_tasks, name="api-tasks"),
    path("api/tasks/<str:task_id>/", views.api_task, name="api-task"),
    path("api/tasks/<str:task_id>/revoke", views.api_revoke, name="api-revoke"),
    path("api/tasks/<str:task_id>/rerun", views.api_rerun, name="api-rerun"),
]
