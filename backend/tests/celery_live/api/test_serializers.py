"""The schema describes every field a run has (`RunState.as_dict`), attempts included."""

import pytest

from celery_live.runs.state import RunState, new_attempt

pytestmark = pytest.mark.django_db


@pytest.fixture
def components(client):
    return client.get("/api/schema/").json()["components"]["schemas"]


def test_every_field_of_a_run_is_in_the_schema(components):
    described = set(components["RunDetail"]["properties"])
    assert set(RunState(task_id="t").as_dict()) == described


def test_attempts_eta_and_max_retries_are_described(components):
    run = components["RunDetail"]["properties"]
    assert run["attempts"]["type"] == "array"
    attempt = components[run["attempts"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert set(attempt["properties"]) == set(new_attempt(0))
    assert set(attempt["required"]) == set(new_attempt(0))
    assert (run["eta"]["type"], run["eta"].get("nullable")) == ("number", True)
    assert (run["max_retries"]["type"], run["max_retries"].get("nullable")) == ("integer", True)
