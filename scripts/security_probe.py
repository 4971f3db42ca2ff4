"""Attack a running dashboard as an outsider would, and print what each attempt got.

    python -m scripts.security_probe http://127.0.0.1:8000 [--token KEY] [--login USER:PASSWORD]

Nothing here is a test (the tests are in backend/tests); this is the table of the security
issue's closing note, measured against a real server: run it against `make run` (login-free)
and against a server in login mode with a user's token and password, before and after a
change. Each line: the attempt, the HTTP status (or the socket's close code) and what the
answer said. Writes go to a run the probe launched itself (with the token when given).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

EVIL = "http://evil.example"
LAUNCH = {"message": "probe", "count": 1, "delay": 0}


@dataclass
class Answer:
    status: int
    content_type: str
    body: str
    headers: dict[str, str]

    def summary(self) -> str:
        kind = self.content_type.split(";")[0] or "-"
        text = re.sub(r"\s+", " ", self.body)[:90]
        retry = f" Retry-After={self.headers['Retry-After']}" if "Retry-After" in self.headers else ""
        where = f" -> {self.headers['Location']}" if "Location" in self.headers else ""
        return f"{self.status} {kind}{retry}{where} {text}"


class Probe:
    """HTTP calls to one dashboard, without following redirects, with an optional session."""

    def __init__(self, base: str, token: str = "") -> None:
        self.base = base.rstrip("/")
        self.token = token
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), NoRedirect()
        )

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        cookies: bool = False,
    ) -> Answer:
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        opener = self.opener if cookies else urllib.request.build_opener(NoRedirect())
        try:
            with opener.open(request, timeout=30) as response:
                return self.answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return self.answer(error.code, error.headers, error.read())

    @staticmethod
    def answer(status: int, headers: object, raw: bytes) -> Answer:
        found = dict(headers.items())  # type: ignore[attr-defined]
        return Answer(status, found.get("Content-Type", ""), raw.decode(errors="replace"), found)

    def json_post(self, path: str, body: object) -> Answer:
        return self.json_post_raw(json.dumps(body).encode(), path)

    def json_post_raw(self, body: bytes, path: str = "/api/tasks/") -> Answer:
        """POST `body` as JSON, with the token when the probe has one."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        return self.call("POST", path, body, headers)

    def log_in(self, user: str, password: str, path: str = "/accounts/login/") -> Answer:
        self.call("GET", path, cookies=True)
        csrf = self.csrf()
        form = urllib.parse.urlencode({"username": user, "password": password, "csrfmiddlewaretoken": csrf})
        return self.call(
            "POST",
            path,
            form.encode(),
            {"Content-Type": "application/x-www-form-urlencoded", "Referer": self.base + path},
            cookies=True,
        )

    def csrf(self) -> str:
        return next((c.value for c in self.cookies if c.name == "csrftoken"), "")

    def socket(self, origin: str, token: bool = False) -> str:
        """What opening `/ws/events/` from `origin` gets: its first frame, or how it ended."""
        url = self.base.replace("http", "ws", 1) + "/ws/events/"
        headers = {"Authorization": f"Token {self.token}"} if token and self.token else None
        try:
            with connect(url, origin=origin, additional_headers=headers, proxy=None, open_timeout=10) as ws:
                try:
                    frame = ws.recv(timeout=2)
                except TimeoutError:
                    return "open, live (no frame in 2 s)"
                try:
                    ws.recv(timeout=2)
                except ConnectionClosed as closed:
                    return f"closed {closed.rcvd.code if closed.rcvd else '-'} after {frame[:70]}"
                except TimeoutError:
                    pass
                return f"open, sent {frame[:70]}"
        except InvalidStatus as refused:
            return f"refused at the handshake: HTTP {refused.response.status_code}"
        except ConnectionClosed as closed:
            return f"closed {closed.rcvd.code if closed.rcvd else '-'}"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def nested(depth: int) -> bytes:
    return b'{"message": ' + b"[" * depth + b"]" * depth + b"}"


def attempts(probe: Probe, run_id: str) -> list[tuple[str, Callable[[], Answer | str]]]:
    """(attempt, how to make it) for a run `run_id` the probe launched."""
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": EVIL}
    return [
        (
            "cross-site form, empty body: POST /api/tasks/<id>/rerun",
            lambda: probe.call("POST", f"/api/tasks/{run_id}/rerun", b"", form),
        ),
        (
            "cross-site form, empty body: POST /api/tasks/<id>/revoke",
            lambda: probe.call("POST", f"/api/tasks/{run_id}/revoke", b"", form),
        ),
        (
            "cross-site text/plain JSON: POST /api/tasks/",
            lambda: probe.call(
                "POST",
                "/api/tasks/",
                json.dumps(LAUNCH).encode(),
                {"Content-Type": "text/plain", "Origin": EVIL},
            ),
        ),
        (
            "page form without CSRF token: POST /tasks/<id>/rerun",
            lambda: probe.call("POST", f"/tasks/{run_id}/rerun", b"", form),
        ),
        (
            "session cookie + foreign Origin: POST /api/tasks/<id>/rerun",
            lambda: probe.call(
                "POST", f"/api/tasks/{run_id}/rerun", b"", {**form, "X-CSRFToken": probe.csrf()}, cookies=True
            ),
        ),
        ("anonymous GET /", lambda: probe.call("GET", "/")),
        ("anonymous GET /api/tasks/", lambda: probe.call("GET", "/api/tasks/?limit=1")),
        ("GET /accounts/login/", lambda: probe.call("GET", "/accounts/login/")),
        (
            "Authorization: Token <key> GET /api/tasks/",
            lambda: probe.call(
                "GET", "/api/tasks/?limit=1", headers={"Authorization": f"Token {probe.token}"}
            ),
        ),
        (
            "Authorization: Basic GET /api/tasks/",
            lambda: probe.call("GET", "/api/tasks/?limit=1", headers={"Authorization": "Basic YTpi"}),
        ),
        ("JSON nested 100,000 deep", lambda: probe.json_post_raw(nested(100_000))),
        (
            "10 MB JSON body",
            lambda: probe.json_post_raw(b'{"message": "' + b"x" * 10_000_000 + b'"}'),
        ),
        (
            "message as a list",
            lambda: probe.json_post("/api/tasks/", {**LAUNCH, "message": ["a", "b"]}),
        ),
        (
            "message with a lone surrogate",
            lambda: probe.json_post_raw(b'{"message": "\\ud800", "count": 1}'),
        ),
        (
            "message with a NUL",
            lambda: probe.json_post("/api/tasks/", {**LAUNCH, "message": "a\x00b"}),
        ),
        ("unknown API URL GET /api/nope", lambda: probe.call("GET", "/api/nope")),
        (
            "unknown run GET /tasks/<uuid>/",
            lambda: probe.call("GET", "/tasks/00000000-0000-0000-0000-000000000000/"),
        ),
        ("socket from http://localhost:9999", lambda: probe.socket("http://localhost:9999")),
        ("socket from the site, anonymous", lambda: probe.socket(probe.base)),
        ("socket from the site, with the token", lambda: probe.socket(probe.base, token=True)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("base", help="the dashboard, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token", default="", help="an API token of a user who may launch and control")
    parser.add_argument("--login", default="", help="USER:PASSWORD of that user, for the session attempts")
    parser.add_argument("--login-path", default="/accounts/login/", help="the login form's path")
    parser.add_argument("--launches", type=int, default=70, help="launches in a row, to find the rate limit")
    args = parser.parse_args()
    probe = Probe(args.base, args.token)
    if args.login:
        user, _, password = args.login.partition(":")
        print(f"log in as {user}: {probe.log_in(user, password, args.login_path).summary()}")
    launched = probe.json_post("/api/tasks/", LAUNCH)
    print(f"launch (JSON{', token' if args.token else ''}): {launched.summary()}")
    run_id = json.loads(launched.body).get("task_id", "none") if launched.status == 201 else "none"
    for name, attempt in attempts(probe, run_id):
        outcome = attempt()
        print(f"| {name} | {outcome.summary() if isinstance(outcome, Answer) else outcome} |")
    statuses = [probe.json_post("/api/tasks/", LAUNCH) for _ in range(args.launches)]
    limited = next((i for i, answer in enumerate(statuses) if answer.status == 429), None)
    outcome = f"429 at launch {limited + 2}: {statuses[limited].summary()}" if limited is not None else "none"
    print(f"| {args.launches} launches in a row | {outcome} |")


if __name__ == "__main__":
    main()
