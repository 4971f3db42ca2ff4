"""HTTP routes of the live dashboard."""

from django.urls import path

from . import views

app_name = "live"

urlpatterns = [
    path("", views.index, name="index"),
    path("runs/", views.launch, name="launch"),
    path("tasks/<str:task_id>/", views.task_page, name="task"),
    path("api/tasks/", views.api_tasks, name="api-tasks"),
    path("api/tasks/<str:task_id>/", views.api_task, name="api-task"),
]
