"""A run's state is a pure function of its events (no servers here)."""

from celery_live.runs.state import RunState, fold


def event(type_, state, seq, attempt=0, **data):
    return {
        "id": f"{1000 + seq}-0",
        "seq": seq,
        "type": type_,
        "state": state,
        "ts": 1000.0 + seq,
        "task_id": "t1",
        "name": "apps.assets.tasks.example_async_task",
        "worker": "celery@w",
        "data": {"attempt": attempt, **data},
    }


SENT = event("task.sent", "PENDING", 1, args=[], kwargs={"name": "Bob", "count": 2})
RECEIVED = event("task.received", "RECEIVED", 2)
STARTED = event("task.started", "STARTED", 3)
P1 = event("task.progress", "PROGRESS", 4, current=1, total=2, result="Bob - iteration 1")
P2 = event("task.progress", "PROGRESS", 5, current=2, total=2, result="Bob - iteration 2")
DONE = event("task.succeeded", "SUCCESS", 6, result={"status": "completed"})


def test_a_successful_run_ends_success_with_every_iteration_in_order():
    run = fold("t1", [SENT, RECEIVED, STARTED, P1, P2, DONE])
    assert run.state == "SUCCESS"
    assert run.results == ["Bob - iteration 1", "Bob - iteration 2"]
    assert (run.current, run.total) == (2, 2)
    assert run.result == {"status": "completed"}
    assert run.kwargs == {"name": "Bob", "count": 2}
    assert run.queue_wait == 2.0
    assert run.run_time == 3.0


def test_events_out_of_order_never_move_a_run_backwards():
    run = fold("t1", [RECEIVED, STARTED, P2, SENT, P1])
    assert run.state == "PROGRESS"
    assert run.current == 2
    assert run.results == ["Bob - iteration 1", "Bob - iteration 2"]


def test_a_final_state_stays_final_whatever_arrives_late():
    run = fold("t1", [SENT, DONE, STARTED, P1, event("task.failed", "FAILURE", 9, exception="X")])
    assert run.state == "SUCCESS"
    assert run.is_final


def test_the_same_event_twice_counts_once():
    run = fold("t1", [SENT, P1, P1, RECEIVED, RECEIVED])
    assert len(run.events) == 3
    assert run.results == ["Bob - iteration 1"]


def test_a_retry_is_a_new_attempt_that_moves_the_run_on():
    # Celery sends the next attempt's message before it signals the retry.
    resent = event("task.sent", "PENDING", 4, attempt=1)
    retried = event("task.retried", "RETRY", 5, reason="try again")
    received_again = event("task.received", "RECEIVED", 6, attempt=1)
    started_again = event("task.started", "STARTED", 7, attempt=1)
    run = fold("t1", [SENT, RECEIVED, STARTED, resent])
    assert (run.state, run.attempt) == ("STARTED", 0)  # the next message alone moves nothing
    run.apply(retried)
    assert (run.state, run.attempt) == ("RETRY", 0)
    run.apply(received_again).apply(started_again)
    assert (run.state, run.attempt) == ("STARTED", 1)


def test_failure_keeps_the_error_and_traceback():
    failed = event("task.failed", "FAILURE", 5, exception="DemoTaskError: boom", traceback="Traceback...")
    run = fold("t1", [SENT, RECEIVED, STARTED, P1, failed])
    assert run.state == "FAILURE"
    assert run.exception == "DemoTaskError: boom"
    assert run.traceback == "Traceback..."
    assert run.percent == 50


def test_as_dict_has_the_documented_fields():
    data = fold("t1", [SENT, RECEIVED, STARTED, P1, P2, DONE]).as_dict()
    assert set(data) == {
        "task_id",
        "name",
        "state",
        "args",
        "kwargs",
        "progress",
        "results",
        "result",
        "exception",
        "traceback",
        "worker",
        "worker_instance",
        "queue",
        "attempt",
        "sent_at",
        "received_at",
        "started_at",
        "finished_at",
        "queue_wait",
        "run_time",
        "last_event_id",
        "rerun_of",
        "parent_id",
        "root_id",
        "group_id",
        "children",
        "waiting_for",
        "attempts",
        "eta",
        "max_retries",
        "events",
    }
    assert data["progress"] == {"current": 2, "total": 2}
    assert data["last_event_id"] == DONE["id"]
    assert "events" not in fold("t1", [SENT]).as_dict(with_events=False)
    assert RunState(task_id="x").as_dict()["state"] == "PENDING"


def test_a_lost_run_received_again_is_a_new_attempt():
    lost = event("task.lost", "LOST", 4, reason="worker died")
    redelivered = event("task.received", "RECEIVED", 5, redelivered=True)
    run = fold("t1", [SENT, RECEIVED, STARTED, lost])
    assert run.state == "LOST"
    run.apply(redelivered)
    assert (run.state, run.attempt, run.finished_at) == ("RECEIVED", 1, None)
    run.apply(event("task.succeeded", "SUCCESS", 6, attempt=1, result=1))
    assert run.state == "SUCCESS"


def test_a_rerun_remembers_what_it_repeats():
    sent = event("task.sent", "PENDING", 1, rerun_of="t0", args=[], kwargs={})
    assert fold("t1", [sent]).rerun_of == "t0"


def test_a_snapshot_keeps_the_runs_fields_as_they_were():
    run = fold("t1", [SENT, RECEIVED, STARTED, P1, P2, DONE])
    snapshot = run.snapshot()
    run.apply(event("task.log", None, 7, message="later"))
    assert (snapshot.state, snapshot.worker, snapshot.first_seen) == ("SUCCESS", "celery@w", 1001.0)
    assert snapshot.search_text == run.search_text
    assert snapshot.events == []
    assert len(run.events) == 7


def retried_run():
    """Attempt 0 fails and retries (Celery's order: the next message first), attempt 1 succeeds."""
    resent = event("task.sent", "PENDING", 4, attempt=1, eta="2026-12-01T00:00:10+00:00")
    resent["worker"] = None  # the message says no worker
    return [
        SENT,
        RECEIVED,
        event("task.started", "STARTED", 3, max_retries=3),
        resent,
        event(
            "task.retried",
            "RETRY",
            5,
            reason="Retry in 10s: DemoTaskError('boom')",
            exception="DemoTaskError: boom",
            retry_at=1796083210.0,
            max_retries=3,
        ),
        event("task.received", "RECEIVED", 6, attempt=1),
        event("task.started", "STARTED", 7, attempt=1),
        event("task.succeeded", "SUCCESS", 8, attempt=1, result=42),
    ]


def test_each_attempt_keeps_its_worker_times_error_and_next_due_time():
    run = fold("t1", retried_run())
    assert run.state == "SUCCESS"
    assert (run.attempt, run.max_retries) == (1, 3)
    assert run.attempts == [
        {
            "attempt": 0,
            "state": "RETRY",
            "worker": "celery@w",
            "started": 1003.0,
            "ended": 1005.0,
            "error": "DemoTaskError: boom",
            "retry_at": 1796083210.0,
        },
        {
            "attempt": 1,
            "state": "SUCCESS",
            "worker": "celery@w",
            "started": 1007.0,
            "ended": 1008.0,
            "error": None,
            "retry_at": None,
        },
    ]
    assert run.eta == 1796083210.0  # the retry's message: 2026-12-01T00:00:10Z


def test_attempts_fold_the_same_whatever_the_order_and_however_often():
    events = retried_run()
    in_order = fold("t1", events)
    shuffled = fold("t1", [events[i] for i in (7, 5, 2, 4, 0, 6, 3, 1, 4, 7)])
    assert shuffled.attempts == in_order.attempts
    assert (shuffled.state, shuffled.attempt, shuffled.eta) == ("SUCCESS", 1, in_order.eta)


def test_a_run_waits_in_retry_until_its_next_attempt_is_received():
    events = retried_run()
    run = fold("t1", events[:5])
    assert (run.state, run.attempt) == ("RETRY", 0)
    assert [a["state"] for a in run.attempts] == ["RETRY", "PENDING"]
    assert run.attempts[1]["worker"] is None


def test_an_older_messages_eta_does_not_replace_the_current_one():
    late_first = event("task.sent", "PENDING", 9, eta="2026-12-01T00:00:00")  # no zone: UTC
    run = fold("t1", retried_run()[:6])
    run.apply(late_first)
    assert run.eta == 1796083210.0
    assert fold("t1", [late_first]).eta == 1796083200.0


def test_a_snapshot_keeps_the_attempts_it_had():
    run = fold("t1", retried_run()[:5])
    snapshot = run.snapshot()
    for later in retried_run()[5:]:
        run.apply(later)
    assert [a["state"] for a in snapshot.attempts] == ["RETRY", "PENDING"]
    assert [a["state"] for a in run.attempts] == ["RETRY", "SUCCESS"]


def test_a_failure_the_worker_reports_without_an_attempt_ends_the_newest_one():
    hard_limit = event("task.failed", "FAILURE", 9, exception="TimeLimitExceeded: 1")
    hard_limit["data"]["attempt"] = None
    run = fold("t1", [*retried_run()[:7], hard_limit])
    assert run.state == "FAILURE"
    assert run.attempts[-1] == {**run.attempts[-1], "state": "FAILURE", "error": "TimeLimitExceeded: 1"}


def test_a_run_never_sent_has_no_attempt():
    waiting = event("task.waiting", "PENDING", 1, waiting_for="step 1 of the chain (abcdef12)")
    never = event("task.revoked", "REVOKED", 2, never_sent=True, reason="never sent: step x failed")
    for e in (waiting, never):
        del e["data"]["attempt"]
    run = fold("t1", [waiting, never])
    assert (run.state, run.attempts, run.exception) == ("REVOKED", [], "never sent: step x failed")


def test_the_first_messages_arguments_win_over_an_announcements():
    waiting = event("task.waiting", "PENDING", 1, args=[], kwargs={"delay": 0})
    sent = event("task.sent", "PENDING", 2, args=[7], kwargs={"delay": 0})
    assert fold("t1", [waiting, sent]).args == [7]
