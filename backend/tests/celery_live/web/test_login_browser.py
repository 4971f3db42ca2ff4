"""Login mode in a real browser: the login page, an operator who launches and terminates, a
viewer who only watches, a page whose session ends in another tab (real Daphne, worker and
recorder, Chromium).

One stack for the module, in login mode, on a database of its own with two users made by
its `manage.py shell` (tests/users.py): olga in the operators group, vera in the viewers.
The tests run in order: olga's runs are what vera watches.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.browser import card, launch, log_in, new_page, wait_live, wait_state
from tests.stack import Stack
from tests.users import PASSWORD, create_users

pytestmark = pytest.mark.browser

OPERATOR, VIEWER = "olga", "vera"
LOGIN_URL = "/accounts/login/"

#: Opens a socket from the page (as any script of it could) and resolves with its close
#: code and the frames it got.
OPEN_SOCKET = """path => new Promise(resolve => {
  const ws = new WebSocket(`ws://${location.host}${path}`);
  const frames = [];
  ws.onmessage = event => frames.push(event.data);
  ws.onclose = event => resolve([event.code, frames]);
})"""

#: POSTs from the page with its CSRF token, as its buttons would; resolves with the status.
POST = """([path, json]) => fetch(path, {
  method: "POST",
  headers: {
    "X-CSRFToken": JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"],
    ...(json ? {"Content-Type": "application/json"} : {}),
  },
  body: json ? "{}" : null,
}).then(response => response.status)"""


@pytest.fixture(scope="module")
def login_stack(tmp_path_factory: pytest.TempPathFactory):
    stack = Stack()
    stack.env.update(
        CELERY_LIVE_REQUIRE_LOGIN="1",
        DATABASE_URL=f"sqlite:///{tmp_path_factory.mktemp('login') / 'db.sqlite3'}",
    )
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def users(login_stack: Stack) -> dict[str, dict[str, str]]:
    return create_users(login_stack, {OPERATOR: "operators", VIEWER: "viewers"})


@pytest.fixture(scope="module")
def runs(login_stack: Stack, users: dict[str, dict[str, str]]):
    """The runs olga launches, by name, for the later tests; terminated afterwards through
    the API with her token (the worker's warm shutdown would wait for them)."""
    launched: dict[str, str] = {}
    yield launched
    headers = {"Content-Type": "application/json", "Authorization": f"Token {users[OPERATOR]['token']}"}
    for task_id in launched.values():
        url = f"{login_stack.url}/api/tasks/{task_id}/revoke"
        request = urllib.request.Request(url, data=json.dumps({"terminate": True}).encode(), headers=headers)
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except urllib.error.HTTPError as error:
            if error.code != 409:  # 409: it had ended, nothing to terminate
                raise


def test_an_anonymous_visitor_lands_on_the_login_page_and_its_socket_is_refused(browser, login_stack):
    page = new_page(browser)
    page.goto(login_stack.url + "/")
    page.wait_for_url(f"{login_stack.url}{LOGIN_URL}?next=/")
    code, frames = page.evaluate(OPEN_SOCKET, "/ws/page/")
    assert code == 4401
    assert [json.loads(frame)["login_url"] for frame in frames] == [LOGIN_URL]
    page.context.close()


def test_an_operator_logs_in_launches_and_terminates_a_run_live(browser, login_stack, users, runs):
    page = log_in(browser, login_stack.url, OPERATOR, PASSWORD)
    assert page.get_by_test_id("username").inner_text() == OPERATOR
    runs["running"] = launch(page, "Still going", 60, delay="0.25")  # what vera will watch
    runs["terminated"] = task_id = launch(page, "Olga", 60, delay="0.25")
    page.locator("#launch-form .sent a").click()  # the page of the last launch
    page.wait_for_url(f"{login_stack.url}/tasks/{task_id}/")
    page.get_by_role("button", name="Terminate").click()  # there once it runs; confirmed
    wait_state(page, task_id, "Revoked")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(login_stack.url + LOGIN_URL)
    assert page.get_by_test_id("username").count() == 0
    page.context.close()


def test_a_viewer_watches_without_the_form_or_controls_and_is_refused_control(browser, login_stack, runs):
    page = log_in(browser, login_stack.url, VIEWER, PASSWORD)
    running = runs["running"]
    wait_state(page, running, "Running")
    card(page, running).locator(".iteration").nth(1).wait_for()  # live fragments came in
    assert page.locator("#launch-form").count() == 0
    for name in ("Revoke", "Terminate", "Re-run"):
        assert page.get_by_role("button", name=name).count() == 0, name  # hidden or absent
    for path in (f"/tasks/{running}/revoke", f"/api/tasks/{running}/revoke"):
        assert page.evaluate(POST, [path, path.startswith("/api/")]) == 403, path
    page.context.close()


#: Keeps every page socket the page makes (not presenter mode's) in `window.__sockets`, so
#: a test can drop one.
KEEP_SOCKETS = """
window.__sockets = [];
window.WebSocket = class extends window.WebSocket {
  constructor(...args) {
    super(...args);
    if (String(args[0]).includes("/ws/page/")) window.__sockets.push(this);
  }
};
"""


@pytest.mark.usefixtures("users")
def test_a_page_logged_out_elsewhere_stops_reconnecting_and_links_to_the_login_page(browser, login_stack):
    page = log_in(browser, login_stack.url, VIEWER, PASSWORD)
    other = page.context.new_page()  # a second tab: same session
    other.add_init_script(KEEP_SOCKETS)
    other.goto(login_stack.url + "/runs/")
    wait_live(other)
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(login_stack.url + LOGIN_URL)
    other.evaluate("window.__sockets.at(-1).close()")  # its reconnect finds the session gone
    status = other.locator("#connection.conn--denied")
    status.wait_for(timeout=5_000)
    assert status.inner_text().startswith("Logged out")
    link = status.get_by_role("link", name="Log in")
    assert link.get_attribute("href") == f"{login_stack.url}{LOGIN_URL}?next=%2Fruns%2F"
    other.wait_for_timeout(1_000)  # longer than the next retry's backoff would be
    assert other.evaluate("window.__sockets.length") == 2
    page.context.close()
