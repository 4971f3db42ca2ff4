"""GET /api/scenarios/ and POST /api/scenarios/<name>/: the tour's scenarios, each launched.

Each demo scenario is launched with Celery's eager mode (its tasks run in this process, at
once), so every send function runs and nothing is left queued for other tests' workers;
one chain goes through a real worker for Celery's own root_id.
"""

import pytest
from drf_spectacular.validation import validate_schema
from kombu.exceptions import OperationalError

from apps.assets import scenarios as demo
from celery_live import scenarios
from celery_live.scenarios import Scenario
from config.celery import app as celery_app
from tests.celery_live.test_scenarios import TOUR
from tests.helpers import final_run

pytestmark = pytest.mark.django_db

#: How many runs each scenario sends (the priority one: its backlog and three urgent runs).
RUNS = {
    "retry": 2,
    "rate-limit": 10,
    "time-limit": 2,
    "chain": 3,
    "group": 4,
    "chord": 4,
    "countdown": 3,
    "beat": 1,
    "logs": 1,
    "failure": 1,
}


@pytest.fixture
def eager(settings):
    """Tasks run in this process as they are sent, quickly (the tour's delays set small)."""
    settings.CELERY_LIVE_TOUR_STEP_DELAY = 0.01
    settings.CELERY_LIVE_TOUR_TIME_LIMIT = 0.01
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def post(client, path, **extra):
    return client.post(path, content_type="application/json", **extra)


def errors(response) -> dict:
    return response.json()["errors"]


def test_the_list_names_each_scenario_with_its_title_and_description(client):
    response = client.get("/api/scenarios/")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [item["name"] for item in results] == TOUR
    assert results[0] == {
        "name": "retry",
        "title": demo.RETRY.title,
        "description": demo.RETRY.description,
    }


@pytest.mark.parametrize("name", TOUR)
def test_each_scenario_launches_its_runs_and_opens_the_first(client, eager, name):
    response = post(client, f"/api/scenarios/{name}/")
    assert response.status_code == 201, response.content
    body = response.json()
    expected = RUNS.get(name, demo.HIGH_PRIORITY_RUNS + demo.backlog_size())
    assert len(body["task_ids"]) == len(set(body["task_ids"])) == expected
    assert body["root_id"] == body["task_ids"][0]
    assert body["url"] == f"/tasks/{body['task_ids'][0]}/"


def test_the_priority_backlog_outgrows_what_the_workers_may_hold(settings):
    settings.CELERY_LIVE_TOUR_BACKLOG = 1
    held = celery_app.conf.worker_prefetch_multiplier + 1  # one process, by default
    assert demo.backlog_size() == held + 4
    settings.CELERY_LIVE_TOUR_BACKLOG = 40
    assert demo.backlog_size() == 40


def test_a_chains_root_is_its_first_step_and_a_chords_ids_are_its_header_then_callback(
    client, settings, celery_worker
):
    settings.CELERY_LIVE_TOUR_STEP_DELAY = 0.01
    chain = post(client, "/api/scenarios/chain/").json()
    steps = [final_run(task_id) for task_id in chain["task_ids"]]
    assert [run.state for run in steps] == ["SUCCESS"] * 3
    assert steps[-1].result == ["download", "resize", "upload"]
    assert {run.root_id or run.task_id for run in steps} == {chain["root_id"]}
    assert [run.parent_id for run in steps[1:]] == chain["task_ids"][:2]
    chord = post(client, "/api/scenarios/chord/").json()
    *header, callback = [final_run(task_id) for task_id in chord["task_ids"]]
    assert callback.result == "3 parts done: shard 1, shard 2, shard 3"
    # Sent once the last header task's function returned (before it reports success): a
    # step's sleep after the last header task started.
    assert callback.started_at >= max(run.started_at for run in header) + settings.CELERY_LIVE_TOUR_STEP_DELAY


def test_an_unknown_scenario_is_404_in_the_one_error_shape(client):
    response = post(client, "/api/scenarios/nope/")
    assert response.status_code == 404
    assert errors(response) == {"__all__": ["unknown scenario 'nope'"]}
    assert client.get("/api/scenarios/retry/").status_code == 405


def test_launching_needs_the_launch_permission(client, login_mode, make_user, token_for):
    assert post(client, "/api/scenarios/failure/").status_code == 401
    assert client.get("/api/scenarios/").status_code == 401
    viewer = token_for(make_user("vera", "viewers"))
    assert client.get("/api/scenarios/", **viewer).status_code == 200
    refused = post(client, "/api/scenarios/failure/", **viewer)
    assert refused.status_code == 403
    assert "launch" in errors(refused)["__all__"][0]


def test_launches_count_toward_the_launch_rate(client, settings, eager):
    settings.CELERY_LIVE_LAUNCH_RATE = "1/minute"
    assert post(client, "/api/scenarios/logs/").status_code == 201
    refused = post(client, "/api/scenarios/logs/")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "Too many launches" in errors(refused)["__all__"][0]


def test_the_broker_away_is_503_and_a_body_must_be_json(client, monkeypatch):
    def away():
        raise OperationalError("connection refused")

    unreachable = Scenario(name="failure", title="Failure", description="Cannot send.", send=away)
    monkeypatch.setattr(scenarios, "get", lambda name: unreachable)
    response = post(client, "/api/scenarios/failure/")
    assert response.status_code == 503
    assert errors(response) == {"__all__": ["Could not reach the broker: connection refused"]}
    assert client.post("/api/scenarios/failure/", data="x", content_type="text/plain").status_code == 415
    malformed = client.post("/api/scenarios/failure/", data="{", content_type="application/json")
    assert malformed.status_code == 400
    assert "Invalid JSON" in errors(malformed)["__all__"][0]


def test_the_schema_describes_both_operations_with_examples(client):
    schema = client.get("/api/schema/").json()
    validate_schema(schema)
    listed = schema["paths"]["/api/scenarios/"]["get"]
    launch = schema["paths"]["/api/scenarios/{name}/"]["post"]
    assert (listed["operationId"], launch["operationId"]) == ("list_scenarios", "launch_scenario")
    assert {"201", "404", "429", "503"} <= set(launch["responses"])
    assert "examples" in launch["responses"]["201"]["content"]["application/json"]
