"""The Tour page (/tour/) and its Run buttons (POST /tour/<name>/): cards, feedback, refusals;
and what a run's card shows of its attempts and its start time (`_run_attempts.html`)."""

import pytest
from django.core.cache import cache
from django.test import Client
from kombu.exceptions import OperationalError

from apps.assets import scenarios as demo
from celery_live import scenarios
from celery_live.runs.state import RunState, new_attempt
from celery_live.scenarios import Scenario
from celery_live.stream.fragments import render_card
from tests.celery_live.test_scenarios import TOUR
from tests.users import PASSWORD

pytestmark = pytest.mark.django_db

HERE = __name__


def send_one() -> list[str]:
    return ["sent-id"]


HOSTILE = Scenario(
    name="hostile",
    title="<script>alert(1)</script>",
    description="<img src=x onerror=alert(2)>. Two sentences.",
    send=send_one,
)


@pytest.fixture
def eager(settings):
    """The scenarios' tasks run at once in this process: nothing is left queued."""
    from config.celery import app as celery_app

    settings.CELERY_LIVE_TOUR_STEP_DELAY = 0.01
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_the_page_has_a_card_per_scenario_with_its_run_button_and_goes_live(client):
    page = client.get("/tour/")
    assert page.status_code == 200
    html = page.content.decode()
    for name in TOUR:
        assert f'id="scenario-{name}"' in html
        assert f'hx-post="/tour/{name}/"' in html
        assert f'data-present-highlight="scenario-{name}"' in html
    assert demo.CHORD.title in html
    assert 'ws-connect="/ws/page/?view=tour"' in html
    for target in ('id="runs"', 'id="live-cursor"', 'id="beat-schedule"'):
        assert target in html
    assert '<a href="/tour/">Tour</a>' in html  # in the navigation


def test_what_a_host_declares_is_escaped(client, settings):
    settings.CELERY_LIVE_SCENARIOS = [f"{HERE}.HOSTILE"]
    html = client.get("/tour/").content.decode()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html


def test_without_scenarios_the_page_says_so(client, settings):
    settings.CELERY_LIVE_SCENARIOS = []
    html = client.get("/tour/").content.decode()
    assert "declares no scenarios" in html
    assert "hx-post" not in html


def test_a_run_button_launches_with_the_csrf_token_and_links_the_first_run(eager):
    browser = Client(enforce_csrf_checks=True)
    browser.get("/tour/")
    assert browser.post("/tour/chain/").status_code == 403  # no CSRF token: Django's refusal
    token = browser.cookies["csrftoken"].value
    answer = browser.post("/tour/chain/", headers={"X-CSRFToken": token})
    assert answer.status_code == 200
    html = answer.content.decode()
    assert "Sent 3 runs" in html
    assert 'href="/tasks/' in html


def test_an_unknown_scenario_is_a_404_message_not_an_error_page(client):
    answer = client.post("/tour/nope/")
    assert answer.status_code == 404
    assert "unknown scenario &#x27;nope&#x27;" in answer.content.decode()
    assert client.get("/tour/nope/").status_code == 405


def test_a_viewer_watches_but_cannot_launch(client, login_mode, make_user):
    assert client.get("/tour/").status_code == 302  # to the login page
    make_user("vera", "viewers")
    client.login(username="vera", password=PASSWORD)
    html = client.get("/tour/").content.decode()
    assert 'data-testid="read-only"' in html
    assert "hx-post" not in html
    refused = client.post("/tour/failure/")
    assert refused.status_code == 403
    assert 'role="alert"' in refused.content.decode()


def test_launches_count_toward_the_launch_rate(client, settings, eager):
    settings.CELERY_LIVE_LAUNCH_RATE = "1/minute"
    cache.clear()  # counted from zero: other tests launched from this address too
    assert client.post("/tour/logs/").status_code == 200
    refused = client.post("/tour/logs/")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "Too many launches" in refused.content.decode()


def test_the_broker_away_is_a_503_message(client, monkeypatch):
    def away():
        raise OperationalError("connection refused")

    monkeypatch.setattr(
        scenarios, "get", lambda name: Scenario(name=name, title="T", description="D. E.", send=away)
    )
    answer = client.post("/tour/failure/")
    assert answer.status_code == 503
    assert "Could not reach the broker: connection refused" in answer.content.decode()


def attempt(number: int, state: str, error: str | None = None, retry_at: float | None = None) -> dict:
    return {**new_attempt(number), "state": state, "error": error, "retry_at": retry_at}


def test_a_retried_run_shows_each_attempt_of_m_its_error_and_when_the_next_starts():
    run = RunState(
        task_id="flaky",
        name="apps.assets.scenarios.tour_flaky",
        state="RECEIVED",
        attempt=1,
        eta=1764090002.5,
        max_retries=3,
        attempts=[attempt(0, "RETRY", "Boom: <b>503</b>", 1764090002.5), attempt(1, "RECEIVED")],
    )
    html = render_card(run)
    assert "Attempt 1 of 4" in html
    assert "Attempt 2 of 4" in html
    assert "Boom: &lt;b&gt;503&lt;/b&gt;" in html
    assert 'Next attempt at <time data-ts="1764090002.5">' in html
    assert 'data-countdown-to="1764090002.5"' in html
    run.state, run.attempts = "SUCCESS", [*run.attempts[:1], attempt(1, "SUCCESS")]
    html = render_card(run)
    assert "Next attempt" not in html  # started, and ended
    assert "Attempt 2 of 4" in html


def test_a_run_with_a_countdown_shows_when_it_starts_until_it_does():
    run = RunState(
        task_id="later", name="apps.assets.scenarios.tour_step", state="RECEIVED", eta=1764090009.0
    )
    assert 'Starts at <time data-ts="1764090009.0">' in render_card(run)
    assert 'data-testid="attempts"' not in render_card(run)  # one attempt: no list
    run.state = "STARTED"
    assert "Starts at" not in render_card(run)
