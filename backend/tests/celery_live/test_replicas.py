"""Several web replicas on one Redis: two Daphne processes, each recording (two recorders,
two reapers, no separate recorder process), and two prefork workers on the default queue.

Viewers on either replica see every event exactly once, in the log's order; every event is
in the database once; a SIGKILLed worker's run is LOST once, though two reapers watch; the
launch rate is counted in the cache both replicas share. And docker-compose.yml's proxy
(deploy/nginx.conf, in a real nginx when this machine has one) spreads the sockets over the
replicas its DNS names and finds one added later. (Presenter mode across replicas is
web/test_presenter_browser.py's.) Clients are synchronous (websockets' sync client, in
threads): once a browser test has run, Playwright's sync API runs an event loop in this thread.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psutil
import pytest
from django.core.cache import cache
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from celery_live.log import publishing, store
from celery_live.log.events import parse_id
from celery_live.log.store import RECORDER_GROUP
from celery_live.log.vocabulary import EventType
from celery_live.processes.redis_server import free_port
from celery_live.runs import history
from tests.helpers import wait_for
from tests.paths import ROOT_DIR
from tests.stack import Stack, start_web_only

#: Runs the viewers test launches, alternating between the replicas.
RUNS = 20
#: Iterations of each run (each one a `task.progress` event and an iteration on the page).
ITERATIONS = 3
#: The replicas' launch rate per minute: above what the tests launch, low enough to reach.
RATE = 30


def worker_label(web: Stack) -> str:
    """What the stack calls the worker started beside `web`."""
    return f"replica-{web.port}"


def worker_name(web: Stack) -> str:
    """That worker's hostname (`%h` is this machine's name)."""
    return f"{worker_label(web)}@{socket.gethostname()}"


@pytest.fixture(scope="module")
def replicas() -> Iterator[tuple[Stack, Stack]]:
    """Two Daphnes recording in their own process (CELERY_LIVE_RECORDER=1, as a host without
    `record_events` runs them) and a worker beside each (in its own process group, to be
    killed whole), on the test run's Redis and database."""
    both = (Stack(), Stack())
    for web in both:
        web.env["CELERY_LIVE_LAUNCH_RATE"] = f"{RATE}/minute"
    both[0].migrate()
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda web: web.start_web(CELERY_LIVE_RECORDER="1"), both))
        for web in both:
            web.spawn_worker(worker_label(web), web.queue, concurrency=2)
        yield both
    finally:
        for web in both:
            web.stop()


@pytest.fixture(autouse=True)
def launches_counted_from_zero() -> None:
    """Both replicas count launches in the shared cache (the test process's too): from zero."""
    cache.clear()


class Viewer:
    """An open socket, read in a thread until it closes; its frames."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.frames: list[str] = []
        self.closed_with: int | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while True:
                self.frames.append(self.socket.recv())
        except ConnectionClosed as closed:
            self.closed_with = closed.rcvd.code if closed.rcvd else None


@contextmanager
def viewers(replicas: tuple[Stack, Stack], since: str) -> Iterator[dict[str, Viewer]]:
    """On each replica a `/ws/events/` and a `/ws/page/` viewer, following from `since`."""
    with ExitStack() as open_viewers:
        found = {}
        for index, web in enumerate(replicas):
            for kind in ("events", "page"):
                url = f"ws://127.0.0.1:{web.port}/ws/{kind}/?since={since}"
                ws = connect(url, origin=web.url, max_size=None, ping_interval=None, proxy=None)
                found[f"{kind} on replica {index + 1}"] = Viewer(open_viewers.enter_context(ws))
        yield found


def event_ids(viewer: Viewer) -> list[str]:
    return [json.loads(frame)["id"] for frame in viewer.frames]


def cursors(viewer: Viewer) -> list[str]:
    """The page frames' cursors (`data-last-id`), in arrival order."""
    return [cursor for frame in viewer.frames for cursor in re.findall(r'data-last-id="([^"]+)"', frame)]


def up_to(ids: list[str], last: str) -> list[str]:
    return [event_id for event_id in ids if parse_id(event_id) <= parse_id(last)]


def launch(web: Stack, **fields: object) -> dict:
    return web.api("/api/tasks/", {"kind": "example", "message": "Replica", **fields})


def run_states(web: Stack, task_ids: list[str]) -> dict[str, str]:
    return {task_id: web.api(f"/api/tasks/{task_id}/").get("state") for task_id in task_ids}


def recorded_counts(web: Stack, task_ids: list[str]) -> dict[str, int]:
    """Events per run in the database."""
    code = (
        "import json; from django.db.models import Count; from celery_live.runs.models import Event; "
        f"rows = Event.objects.filter(task_id__in={task_ids!r}).values_list('task_id')"
        ".annotate(n=Count('id')); print(json.dumps(dict(rows)))"
    )
    return json.loads(web.shell(code).splitlines()[-1])  # after what Django's shell says it imported


def test_every_viewer_on_either_replica_gets_every_event_once_and_each_is_recorded_once(replicas):
    since = history.last_event_id()
    with viewers(replicas, since) as open_viewers:
        task_ids = [launch(replicas[n % 2], count=ITERATIONS, delay=0.3)["task_id"] for n in range(RUNS)]
        wait_for(
            lambda: set(run_states(replicas[0], task_ids).values()) == {"SUCCESS"},
            timeout=60,
            interval=0.5,
            message=f"{RUNS} runs to succeed",
        )
        logged = history.read_after(since, count=100_000)
        last_task_event = [event["id"] for event in logged if event.get("task_id") in task_ids][-1]
        for name, viewer in open_viewers.items():
            latest = event_ids if name.startswith("events") else cursors
            wait_for(
                lambda: any(parse_id(i) >= parse_id(last_task_event) for i in latest(viewer)),  # noqa: B023
                timeout=20,
                message=f"the {name} viewer to reach {last_task_event}",
            )
        assert not {name: v.closed_with for name, v in open_viewers.items() if v.closed_with is not None}
    logged = [event for event in logged if parse_id(event["id"]) <= parse_id(last_task_event)]
    workers = {event["worker"] for event in logged if event["type"] == EventType.TASK_STARTED}
    assert workers == {worker_name(web) for web in replicas}  # both ran some

    for name, viewer in open_viewers.items():
        if name.startswith("events"):
            # Every event of the log, in its order, each once.
            assert up_to(event_ids(viewer), last_task_event) == [event["id"] for event in logged], name
        else:
            seen = cursors(viewer)
            assert seen == sorted(set(seen), key=parse_id), f"{name}: a cursor repeated or went back"
            page = "".join(viewer.frames)
            cards = Counter(re.findall(r'afterbegin:#runs">\s*<article class="run" id="run-([^"]+)"', page))
            assert cards == Counter(task_ids), f"{name}: each run's card once"
            steps = re.findall(
                r'beforeend:#run-([^"]+)-results">\s*<li class="iteration" value="(\d+)"', page
            )
            expected = Counter((task_id, str(i)) for task_id in task_ids for i in range(1, ITERATIONS + 1))
            assert Counter(steps) == expected, f"{name}: each iteration once"

    # Two recorders (one per Daphne) shared the work; the database holds what the log holds.
    in_log = Counter(event["task_id"] for event in logged if event.get("task_id") in task_ids)
    wait_for(
        lambda: recorded_counts(replicas[0], task_ids) == in_log, timeout=30, message="every event recorded"
    )
    group = store.client().xinfo_consumers(store.stream_key(), RECORDER_GROUP)
    consumers = {consumer["name"] for consumer in group}
    assert all(any(name.endswith(f"-{web.web.pid}") for name in consumers) for web in replicas)


def test_a_sigkilled_workers_run_is_lost_once_though_two_reapers_watch(replicas):
    task_id = launch(replicas[1], count=100, delay=0.2)["task_id"]
    run = wait_for(
        lambda: (
            ((run := replicas[0].api(f"/api/tasks/{task_id}/")).get("progress") or {}).get("current") and run
        ),
        timeout=20,
        interval=0.1,
        message="the long run to make progress",
    )
    doomed = next(web for web in replicas if run["worker"] == worker_name(web))
    survivor = next(web for web in replicas if web is not doomed)
    worker = doomed.worker_process(worker_label(doomed))
    os.killpg(worker.pid, signal.SIGKILL)  # the whole worker, its pool too: a crash
    worker.wait()
    wait_for(
        lambda: replicas[1].api(f"/api/tasks/{task_id}/").get("state") == "LOST",
        timeout=30,
        interval=0.2,
        message="the run to be LOST",
    )
    # Both reapers have had their turns since (each runs once a second): the survivor has
    # beaten twice more (every 2 s).
    since = history.last_event_id()

    def beats_since() -> int:
        return sum(
            event["type"] == EventType.WORKER_HEARTBEAT and event.get("worker") == worker_name(survivor)
            for event in history.read_after(since, count=10_000)
        )

    wait_for(lambda: beats_since() >= 2, timeout=20, message="two heartbeats of the surviving worker")
    types = [event["type"] for event in history.task_events(task_id)]
    assert types.count(EventType.TASK_LOST) == 1, types
    assert types[-1] == EventType.TASK_LOST
    wait_for(
        lambda: recorded_counts(survivor, [task_id]) == {task_id: len(types)},
        timeout=20,
        message="the lost run's events recorded once",
    )


def test_the_launch_rate_is_counted_across_replicas(replicas):
    first, second = replicas
    # Refused by the form (no message), yet counted: nothing is sent.
    answers = [replicas[n % 2].api("/api/tasks/", {"kind": "example", "count": 1}) for n in range(RATE)]
    assert {answer.get("status") for answer in answers} == {400}
    assert first.api("/api/tasks/", {"kind": "example", "count": 1})["status"] == 429
    assert second.api("/api/tasks/", {"kind": "example", "count": 1})["status"] == 429


class DnsStub:
    """A DNS server on a free UDP port of 127.0.0.1, as Docker's is for a scaled service: every
    A question is answered with `addresses` (a list a test may change while it runs)."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                query, client = self.socket.recvfrom(512)
            except OSError:  # closed
                return
            self.socket.sendto(self.answer(query), client)

    def answer(self, query: bytes) -> bytes:
        """The reply to `query`: its question, then an A record (TTL 1 s) per address."""
        question_end = query.index(b"\0", 12) + 5  # the name, then its type and class
        (question_type,) = struct.unpack("!H", query[question_end - 4 : question_end - 2])
        addresses = list(self.addresses) if question_type == 1 else []
        # Same id; a response, recursion desired and available, no error; one question.
        header = query[:2] + struct.pack("!HHHHH", 0x8180, 1, len(addresses), 0, 0)
        # Each record's name points back at the question's (offset 12).
        records = b"".join(struct.pack("!HHHIH", 0xC00C, 1, 1, 1, 4) + socket.inet_aton(a) for a in addresses)
        return header + query[12:question_end] + records

    def close(self) -> None:
        self.socket.close()


@contextmanager
def nginx(directory: Path, dns_port: int, backend_port: int) -> Iterator[str]:
    """deploy/nginx.conf in a real nginx; its URL. Only what Docker gives the container
    differs: the DNS server's address, the replicas' port, and a free port to listen on."""
    listen = free_port()
    site = (ROOT_DIR / "deploy" / "nginx.conf").read_text()
    for docker, here in (
        ("resolver 127.0.0.11 ", f"resolver 127.0.0.1:{dns_port} "),
        ("http://backend:8000;", f"http://backend:{backend_port};"),
        ("listen 8000;", f"listen 127.0.0.1:{listen};"),
    ):
        assert site.count(docker) == 1, f"deploy/nginx.conf no longer says {docker!r} once"
        site = site.replace(docker, here)
    (directory / "site.conf").write_text(site)
    temp_paths = " ".join(
        f"{kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (directory / "nginx.conf").write_text(
        f"user root; pid {directory / 'nginx.pid'}; error_log {directory / 'error.log'};\n"
        f"events {{}}\nhttp {{ access_log off; {temp_paths} include {directory / 'site.conf'}; }}\n"
    )
    process = subprocess.Popen(
        ["nginx", "-p", str(directory), "-c", str(directory / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: process.poll() is not None or port_open(listen), message="nginx to listen")
        assert process.poll() is None, (directory / "error.log").read_text()
        yield f"127.0.0.1:{listen}"
    finally:
        process.terminate()
        process.wait(10)


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def sockets_to(web: Stack) -> int:
    """Established connections to `web`'s Daphne (the proxy's, one per socket it carries)."""
    listening = (web.env["HOST"], int(web.env["PORT"]))
    connections = psutil.Process(web.web.pid).net_connections("tcp")
    return sum(c.status == psutil.CONN_ESTABLISHED and tuple(c.laddr) == listening for c in connections)


@pytest.mark.skipif(
    shutil.which("nginx") is None, reason="no nginx here to run deploy/nginx.conf (apt install nginx)"
)
def test_the_compose_proxy_spreads_sockets_over_the_replicas_and_finds_a_new_one(tmp_path):
    port = free_port()
    addresses = ["127.0.0.2", "127.0.0.3"]  # one port on several loopback addresses, as containers
    allowed = "127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4"
    webs: list[Stack] = []
    dns = DnsStub(addresses)
    try:
        webs += [start_web_only(HOST=a, PORT=str(port), DJANGO_ALLOWED_HOSTS=allowed) for a in addresses]
        with nginx(tmp_path, dns.port, port) as proxy, ExitStack() as open_sockets:

            def open_socket():
                # Accepted only if the proxy passes the Host it was sent: the page's origin.
                return open_sockets.enter_context(
                    connect(
                        f"ws://{proxy}/ws/events/", origin=f"http://{proxy}", ping_interval=None, proxy=None
                    )
                )

            viewers: list[ClientConnection] = []

            def open_until(found: Callable[[], bool], message: str) -> None:
                """Open sockets through the proxy until `found()`: nginx takes the name's
                addresses from a random one on, so which replica a socket reaches is luck."""
                wait_for(
                    lambda: viewers.append(open_socket()) or found(),
                    timeout=20,
                    interval=0.1,
                    message=message,
                )

            open_until(lambda: all(sockets_to(web) for web in webs), "sockets on both replicas")
            event_id = publishing.publish(EventType.TASK_SENT, task_id=f"proxied-{port}", name="n")["id"]
            for viewer in viewers:  # each one is live through the proxy
                wait_for(lambda: json.loads(viewer.recv(timeout=10))["id"] == event_id, message="the event")  # noqa: B023

            # `--scale backend=3`: a third replica, a third address for the name, found
            # once nginx asks the DNS again (`valid=5s`).
            webs.append(start_web_only(HOST="127.0.0.4", PORT=str(port), DJANGO_ALLOWED_HOSTS=allowed))
            addresses.append("127.0.0.4")
            open_until(lambda: sockets_to(webs[-1]) > 0, "a socket on the new replica")
    finally:
        dns.close()
        for web in webs:
            web.stop()
