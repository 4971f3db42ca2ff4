"""The dashboard's HTTP routes; a host includes them (`path("", include("celery_live.urls"))`)."""

from django.urls import include, path

from celery_live.web import accounts, charts, failures, health, metrics, queues, tour, views, workers

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
    path("queues/", queues.queues_page, name="queues"),
    path("charts/", charts.charts_page, name="charts"),
    # A task name may hold any character, a slash too.
    path("charts/<path:name>/", charts.task_name_page, name="task_name"),
    path("failures/", failures.failures_page, name="failures"),
    path("tour/", tour.tour_page, name="tour"),
    path("tour/<str:name>/", tour.scenario_launch, name="tour-launch"),
    path("workers/", workers.workers_page, name="workers"),
    path("workers/<str:hostname>/<str:action>", workers.worker_control, name="worker-control"),
    path("metrics", metrics.metrics_view, name="metrics"),
    # The JSON API (api-tasks, api-task, api-revoke, api-rerun, api-schema, api-docs).
    path("", include("celery_live.api.urls")),
]
