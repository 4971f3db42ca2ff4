"""The API's routes, under the names the dashboard's `urls.py` has always given them."""

from django.urls import path

from celery_live.api import failures, queues, scenarios, schema, views, workers

urlpatterns = [
    path("api/tasks/", views.TasksView.as_view(), name="api-tasks"),
    path("api/tasks/<str:task_id>/", views.TaskView.as_view(), name="api-task"),
    path("api/tasks/<str:task_id>/revoke", views.RevokeView.as_view(), name="api-revoke"),
    path("api/tasks/<str:task_id>/rerun", views.RerunView.as_view(), name="api-rerun"),
    path("api/queues/", queues.QueuesView.as_view(), name="api-queues"),
    path("api/workers/", workers.WorkersView.as_view(), name="api-workers"),
    path(
        "api/workers/<str:hostname>/<str:action>",
        workers.WorkerControlView.as_view(),
        name="api-worker-control",
    ),
    path("api/failures/", failures.FailuresView.as_view(), name="api-failures"),
    path("api/scenarios/", scenarios.ScenariosView.as_view(), name="api-scenarios"),
    path("api/scenarios/<str:name>/", scenarios.ScenarioLaunchView.as_view(), name="api-scenario"),
    path("api/schema/", schema.SchemaView.as_view(), name="api-schema"),
    path("api/docs/", schema.DocsView.as_view(), name="api-docs"),
]
