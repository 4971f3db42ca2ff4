"""The tour for real: each scenario launched from the Tour page in Chromium, against Daphne, a
prefork worker, the recorder and Beat, and what each shows live checked in the page (and the
runs' times from the API where the point is timing).

Every delay is short (the stack's CELERY_LIVE_TOUR_* settings) and the scenarios run at
once, so the module takes seconds; every run ends before the stack stops, so nothing is left
queued for other tests' workers.
"""

from __future__ import annotations

import itertools
import json

import pytest

from celery_live.log import publishing
from config.celery import app
from tests.browser import card, open_page, wait_live, wait_state
from tests.helpers import wait_for
from tests.stack import Stack

pytestmark = pytest.mark.browser

#: The stack's tour settings: the rate limit's pace (s between two starts), Beat's interval.
PACE = 0.5
BEAT_EVERY = 2
TOUR_ENV = {
    "CELERY_LIVE_TOUR_STEP_DELAY": "0.4",
    "CELERY_LIVE_TOUR_RATE_LIMIT": f"{int(60 / PACE)}/m",
    "CELERY_LIVE_TOUR_TIME_LIMIT": "1",
    "CELERY_LIVE_TOUR_COUNTDOWN": "1.5",
    "CELERY_LIVE_TOUR_BEAT_EVERY": str(BEAT_EVERY),
}
#: Launched together, in this order (the ones whose runs take longest first); priority and
#: rate-limit run alone, as the worker's prefetch changes with the others' ETAs.
SCENARIOS = ("retry", "countdown", "logs", "time-limit", "chord", "chain", "group", "failure")


@pytest.fixture(scope="module")
def stack():
    """Daphne, recorder, a prefork worker of 3 processes and Beat, with the tour's short delays."""
    running = Stack(concurrency=3)
    running.env.update(TOUR_ENV)
    running.start()
    running.start_beat()
    yield running
    running.stop()
    app.control.purge()  # Beat's last sends, if the worker stopped before taking them


@pytest.fixture(scope="module")
def page(browser, stack):
    tour = open_page(browser, stack.url, "/tour/")
    yield tour
    tour.context.close()


def wait_for_the_pool(stack) -> None:
    """Until the worker's heartbeat is in the registry (which each test's clean log empties):
    the priority backlog is sized from it."""
    wait_for(
        lambda: any(w["online"] and w["concurrency"] == 3 for w in stack.api("/api/workers/")["results"]),
        message="the worker's heartbeat",
    )


def run_scenario(page, name: str) -> list[str]:
    """Click the scenario's Run button; the ids of the runs it sent (its feedback says them)."""
    page.locator(f"#scenario-{name} [data-present-highlight='scenario-{name}']").click()
    sent = page.locator(f"#scenario-{name}-result [data-task-ids]")
    sent.wait_for(timeout=10_000)
    return sent.get_attribute("data-task-ids").split()


def run_json(page, task_id: str) -> dict:
    """The run as the API says it, fetched by the page (its session)."""
    return json.loads(page.evaluate("id => fetch('/api/tasks/' + id + '/').then(r => r.text())", task_id))


def test_each_scenario_shows_what_celery_does_live(page, stack):
    launched = {name: run_scenario(page, name) for name in SCENARIOS}

    # retry: the next attempt counting down while it waits.
    recovers, gives_up = launched["retry"]
    card(page, gives_up).locator("[data-testid=eta]", has_text="Next attempt at").wait_for(timeout=10_000)

    # countdown: each run waits with its start time, counting down.
    last = launched["countdown"][-1]
    card(page, last).locator("[data-testid=eta] [data-countdown-to]", has_text=" s").wait_for(timeout=5_000)
    shown = card(page, last).locator("[data-testid=eta] time").get_attribute("data-ts")
    assert float(shown) == pytest.approx(run_json(page, last)["eta"])

    # logs: the lines stream into the run's detail page while it runs.
    detail = page.context.new_page()
    detail.goto(f"{stack.url}/tasks/{launched['logs'][0]}/")
    detail.locator("#timeline", has_text="batch 2 of 5 imported").wait_for(timeout=15_000)
    detail.locator("#timeline", has_text="import finished").wait_for(timeout=15_000)
    detail.close()

    # retry: attempt n of m with each error, then the final state.
    wait_state(page, recovers, "Succeeded")
    wait_state(page, gives_up, "Failed")
    attempts = card(page, gives_up).locator("[data-testid=attempt]").all_inner_texts()
    assert len(attempts) == 4
    for n, text in enumerate(attempts, 1):
        assert text.startswith(f"Attempt {n} of 4"), text
        assert f"attempt {n}: the inventory service answered 503" in text
        assert ("retry at" in text) == (n < 4)
    assert [a["attempt"] for a in run_json(page, gives_up)["attempts"]] == [0, 1, 2, 3]  # Celery's retries
    assert card(page, recovers).locator("[data-testid=attempt]").count() == 3

    # time-limit: the soft limit caught and cleaned up after; the hard one killed.
    soft, hard = launched["time-limit"]
    wait_state(page, soft, "Succeeded")
    assert "cleaned up" in card(page, soft).inner_text()
    wait_state(page, hard, "Failed")
    assert "TimeLimitExceeded" in run_json(page, hard)["exception"]

    # failure: the exception and its traceback.
    wait_state(page, launched["failure"][0], "Failed")
    assert "PaymentDeclined" in run_json(page, launched["failure"][0])["traceback"]

    # chain, group, chord: every step ends; the chord's callback after its whole header.
    for name in ("chain", "group", "chord"):
        for task_id in launched[name]:
            wait_state(page, task_id, "Succeeded")
    # Celery sends the next step (a chain's, a chord's callback) when the step's function has
    # returned but before it reports success: so a next step may start a millisecond before
    # the one it follows is *succeeded* (seen once, 1 ms). What must hold: it starts at
    # least one step's sleep after the step before started, which it could not if they ran
    # side by side.
    step = float(TOUR_ENV["CELERY_LIVE_TOUR_STEP_DELAY"])
    *header, callback = (run_json(page, task_id) for task_id in launched["chord"])
    assert callback["started_at"] >= max(run["started_at"] for run in header) + step
    # The chain's steps one after another, each sent by the one before; the group's runs
    # under one group id.
    steps = [run_json(page, task_id) for task_id in launched["chain"]]
    for before, after in itertools.pairwise(steps):
        assert after["parent_id"] == before["task_id"]
        assert after["started_at"] >= before["started_at"] + step
    members = [run_json(page, task_id) for task_id in launched["group"]]
    assert len({run["group_id"] for run in members}) == 1
    assert members[0]["group_id"]
    wait_state(page, last, "Succeeded")


def test_high_priority_runs_overtake_the_backlog_waiting_in_the_broker(page, stack):
    wait_for_the_pool(stack)
    launched = run_scenario(page, "priority")
    assert len(launched) == 3 + 5 * 3 + 4  # the backlog outgrows what 3 processes may hold
    for task_id in launched:
        wait_state(page, task_id, "Succeeded")
    ends = {task_id: run_json(page, task_id)["finished_at"] for task_id in launched}
    urgent, backlog = launched[:3], launched[3:]
    assert max(ends[t] for t in urgent) < max(ends[t] for t in backlog)


def test_rate_limited_runs_start_at_the_limited_pace(page):
    launched = run_scenario(page, "rate-limit")
    for task_id in launched:
        wait_state(page, task_id, "Succeeded")
    starts = sorted(run_json(page, task_id)["started_at"] for task_id in launched)
    assert starts[-1] - starts[0] >= 8 * PACE  # ten starts: nine gaps of PACE, some slack


def test_beat_shows_its_schedule_counting_down_each_run_live_and_runs_now(page):
    ticks = page.locator("#runs .run", has_text="tour_beat_tick")
    seen = ticks.count()
    # Beat's next send comes live as a run (and rewrites its entry, which this test's clean
    # log emptied); the page drawn after it shows the schedule.
    wait_for(lambda: ticks.count() > seen, timeout=BEAT_EVERY * 3, message="a run sent by Beat")
    page.reload()
    wait_live(page)
    entry = page.locator("#beat-schedule [data-entry='celery-live-tour']")
    entry.locator("[data-testid=beat-next]", has_text="in ").wait_for(
        timeout=BEAT_EVERY * 3000
    )  # counting down
    runs = entry.locator("[data-testid=beat-count]").inner_text()
    entry.locator("[data-testid=beat-count]", has_text=runs).wait_for(
        state="detached", timeout=BEAT_EVERY * 3000
    )
    (now,) = run_scenario(page, "beat")
    wait_state(page, now, "Succeeded")


def test_an_entry_beat_sends_after_the_page_loaded_appears_live(page):
    # Beat started, or its schedule grew, after the page was drawn: the entry is new to it.
    entry = page.locator("#beat-schedule [data-entry='added after the page loaded']")
    assert entry.count() == 0
    publishing.publish(
        "beat.sent",
        name="apps.assets.tasks.tour_beat_tick",
        data={"entry": "added after the page loaded", "task": "apps.assets.tasks.tour_beat_tick"}
        | {"task_id": "from-a-new-entry", "schedule": "every 2 s", "total_run_count": 1, "next_at": None},
    )
    entry.locator("[data-testid=beat-count]", has_text="1 run").wait_for(timeout=5_000)
