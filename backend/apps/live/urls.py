"""HTTP routes of the live dashboard."""

from django.urls import path

from . import views

app_name = "live"

urlpatterns = [
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
