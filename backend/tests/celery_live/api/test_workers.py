"""The workers' endpoints: the registry as JSON, and control commands that reach a real
(in-thread) worker, refused in the one error shape when they cannot."""

import time

import pytest

from celery_live.log.workers import WorkerRecord, mark_offline, record_worker
from celery_live.runs import history
from tests.celery_live.api.calls import errors, post_json
from tests.celery_live.control.test_workers import own_record
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db

INSTANCE = "41-1764090000123"


def beat(hostname="w@h", **data):
    now = time.time()
    return WorkerRecord.from_beat(hostname, now, {"instance": INSTANCE, "pool": "prefork", **data})


def test_every_instance_is_listed_with_its_pool_queues_counts_and_registered_tasks(client, redis_client):
    record_worker(
        redis_client,
        beat(concurrency=4, queues=["celery"], active=["t1"], processed=9, failed=2, load=[0.5, 0.4, 0.3]),
        ["app.b", "app.a"],
    )
    [worker] = [w for w in client.get("/api/workers/").json()["results"] if w["hostname"] == "w@h"]
    assert worker == {
        "hostname": "w@h",
        "instance": INSTANCE,
        "pid": 41,
        "online": True,
        "pool": "prefork",
        "concurrency": 4,
        "queues": ["celery"],
        "active": 1,
        "active_tasks": ["t1"],
        "reserved": 0,
        "processed": 9,
        "failed": 2,
        "load": [0.5, 0.4, 0.3],
        "last_heartbeat": worker["last_heartbeat"],
        "started": 1764090000.123,
        "offline_at": None,
        "offline_reason": None,
        "registered": ["app.b", "app.a"],
        "bridged": False,
    }


def test_an_offline_instance_stays_listed_offline(client, redis_client):
    record_worker(redis_client, beat())
    mark_offline(redis_client, INSTANCE, "no heartbeat for 12 s")
    [worker] = [w for w in client.get("/api/workers/").json()["results"] if w["hostname"] == "w@h"]
    assert (worker["online"], worker["offline_reason"]) == (False, "no heartbeat for 12 s")


def test_a_command_is_answered_202_with_the_workers_reply_and_recorded_with_who_sent_it(
    client, celery_worker, make_user, token_for
):
    hostname = celery_worker.hostname
    own_record(hostname)
    headers = token_for(make_user("ann", "operators"))
    response = post_json(client, f"/api/workers/{hostname}/add_consumer", {"queue": "extra"}, **headers)
    assert response.status_code == 202
    assert response.json() == {
        "hostname": hostname,
        "action": "add_consumer",
        "arguments": {"queue": "extra"},
        "status": "acknowledged",
        "message": f"add_consumer sent → acknowledged by {hostname}",
        "by": "ann",
        "acknowledged_by": [hostname],
        "replies": {hostname: {"ok": "add consumer extra"}},
    }
    [event] = [e for e in history.read_after("0-0") if e["type"] == "worker.control"]
    assert (event["worker"], event["data"]["by"], event["data"]["action"]) == (
        hostname,
        "ann",
        "add_consumer",
    )
    # Its next beats say it consumes "extra" too; then it can be cancelled.
    wait_for(lambda: "extra" in own_record(hostname).queues, message="a beat listing extra")
    cancel = post_json(client, f"/api/workers/{hostname}/cancel_consumer", {"queue": "extra"}, **headers)
    assert (cancel.status_code, cancel.json()["status"]) == (202, "acknowledged")


@pytest.mark.parametrize(
    ("path", "body", "status", "expected"),
    [
        ("/api/workers/nobody@h/pool_grow", {"n": 1}, 404, {"__all__": ["unknown worker 'nobody@h'"]}),
        (
            "/api/workers/w@h/frobnicate",
            {},
            404,
            {
                "__all__": [
                    "unknown action 'frobnicate': one of pool_grow, pool_shrink, add_consumer, "
                    "cancel_consumer, rate_limit, shutdown"
                ]
            },
        ),
        ("/api/workers/w@h/pool_grow", {"n": "many"}, 400, {"n": ["Enter a whole number."]}),
        ("/api/workers/w@h/rate_limit", {"rate": "10/m"}, 400, {"task": ["This field is required."]}),
    ],
)
def test_what_cannot_be_sent_is_refused_in_the_one_error_shape(
    client, redis_client, path, body, status, expected
):
    record_worker(redis_client, beat())
    response = post_json(client, path, body)
    assert response.status_code == status
    assert errors(response) == expected


def test_a_command_to_an_offline_worker_is_409(client, redis_client):
    record_worker(redis_client, beat())
    mark_offline(redis_client, INSTANCE, "shut down")
    response = post_json(client, "/api/workers/w@h/shutdown")
    assert response.status_code == 409
    assert errors(response) == {"__all__": ["worker w@h is offline (shut down)"]}


def test_a_viewer_may_list_workers_but_not_control_them(
    client, login_mode, make_user, token_for, redis_client
):
    record_worker(redis_client, beat())
    headers = token_for(make_user("val", "viewers"))
    assert client.get("/api/workers/", **headers).status_code == 200
    response = post_json(client, "/api/workers/w@h/pool_grow", {"n": 1}, **headers)
    assert response.status_code == 403
    assert not [e for e in history.read_after("0-0") if e["type"] == "worker.control"]
