"""The bridge for real: `manage.py bridge_events` subprocesses, another team's plain Celery
app (tests/plain_celery.py: no Django, no celery_live) with real `-E` prefork workers, and
our instrumented demo worker; the test run's Redis as broker and log (a private Redis as
the broker where it is restarted; RabbitMQ when one answers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from celery import Celery
from kombu import Connection

from celery_live.bridge.receiver import LISTENING, LISTENING_AGAIN, UNREACHABLE, Bridge, Instances
from celery_live.conf import conf
from celery_live.log import store
from celery_live.log.publishing import get_publisher
from celery_live.log.vocabulary import EventType, ProcessRole, State
from celery_live.log.workers import WorkerRecord, read_beats, read_workers, record_worker, why_gone
from celery_live.processes.redis_server import RedisServer, free_port
from celery_live.runs import history
from celery_live.runs.models import Run
from celery_live.runs.reaper import Reaper
from config.celery import app as demo_app
from tests.celery_live.test_rabbitmq import AMQP_URL, rabbitmq_reachable
from tests.helpers import celery_process, final_run, record_all, unreachable_redis, wait_for
from tests.paths import BACKEND_DIR
from tests.plain_celery import ADD, FAIL, SLEEP, PlainCelery

pytestmark = pytest.mark.django_db

REDIS_URL = os.environ["REDIS_URL"]


class BridgeProcess:
    """A `manage.py bridge_events` subprocess and what it printed."""

    def __init__(self, broker_url: str, log: Path) -> None:
        self.log = log
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONUNBUFFERED": "1"}
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "bridge_events", "--broker", broker_url],
                cwd=BACKEND_DIR,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_line(self, text: str, count: int = 1, timeout: float = 30.0) -> None:
        wait_for(
            lambda: self.output.count(text) >= count or self.process.poll() is not None,
            timeout,
            message=f"the bridge to print {text!r}",
        )
        assert self.output.count(text) >= count, self.output

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(20)


@contextmanager
def bridge(broker_url: str, log: Path, listening: bool = True) -> Iterator[BridgeProcess]:
    """A bridge on `broker_url`, listening (unless told not to wait) until the block ends."""
    running = BridgeProcess(broker_url, log)
    try:
        if listening:
            running.wait_for_line(LISTENING)
        yield running
    finally:
        code = running.stop()
        assert code == 0, running.output
        assert "Traceback" not in running.output, running.output


def logged(task_id: str) -> list[dict]:
    """The run's events in the log (Redis)."""
    return history.task_events(task_id)


def types_of(task_id: str) -> list[str]:
    return [event["type"] for event in logged(task_id)]


def stream(client: redis.Redis) -> list[dict]:
    from celery_live.log.events import decode_entry

    return [decode_entry(i, f) for i, f in client.xrange(store.stream_key())]


def worker_events(client: redis.Redis, hostname: str, etype: str) -> list[dict]:
    return [e for e in stream(client) if e["type"] == etype and e.get("worker") == hostname]


def send_task_sent(producer: Celery, name: str) -> str:
    """Celery's `task-sent` alone, as a plain producer sends it (this test's process runs our
    `before_task_publish`: a real send would log our signal's `task.sent` too); its id."""
    task_id = f"{name}-{uuid.uuid4()}"
    with producer.events.default_dispatcher() as dispatcher:
        dispatcher.send("task-sent", uuid=task_id, name=name, retries=0, queue="nobody")
    return task_id


def until_bridged(producer: Celery) -> None:
    """Wait until the bridge has handled every Celery event sent before now: a marker sent
    after them (one PUBLISH channel keeps their order) is in the log."""
    marker = send_task_sent(producer, "marker")
    wait_for(lambda: logged(marker), 15, message="the bridge to log the marker")


@pytest.fixture(scope="module")
def queue() -> str:
    """The module's own queue: no other test's worker takes its tasks."""
    return f"bridge-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def other(tmp_path_factory, queue):
    with PlainCelery(tmp_path_factory.mktemp("other"), REDIS_URL, queue=queue) as app:
        yield app


@pytest.fixture
def own_other(tmp_path):
    """The plain app on a queue of this test's own: the module's worker does not take its
    tasks (a test that kills its worker must find its task there)."""
    with PlainCelery(tmp_path / "other", REDIS_URL, queue=f"bridge-test-{uuid.uuid4().hex[:8]}") as app:
        yield app
    store.client().delete(app.queue)


@pytest.fixture(scope="module")
def running_bridge(tmp_path_factory):
    with bridge(REDIS_URL, tmp_path_factory.mktemp("bridge") / "bridge.log") as running:
        yield running


@pytest.fixture(autouse=True)
def bridge_noted_as_listening(request):
    """Each test starts with the log's keys cleared (conftest's clean_log), the module's
    bridge's "listening" mark too: wait for its next renewal (every 2 s), as a dedupe key of
    our own `task.sent` is kept only while a bridge listens."""
    if "running_bridge" in request.fixturenames:
        wait_for(lambda: store.client().exists(store.bridge_watch_key()), 10, message="the bridge's mark")


@pytest.fixture(scope="module")
def plain_worker(running_bridge, other):
    """A plain `-E` worker, started once the bridge listens."""
    hostname = f"plain-{uuid.uuid4().hex[:6]}@test"
    with other.worker(events=True, hostname=hostname):
        yield hostname


def test_a_plain_workers_runs_are_logged_and_recorded_like_our_own(running_bridge, other, plain_worker):
    client = store.client()
    added = other.app.send_task(ADD, args=(1, 2)).id
    failed = other.app.send_task(FAIL).id
    assert final_run(added).state == State.SUCCESS
    assert final_run(failed).state == State.FAILURE
    assert types_of(added) == [EventType.TASK_SENT, "task.received", "task.started", "task.succeeded"]
    assert types_of(failed) == [EventType.TASK_SENT, "task.received", "task.started", "task.failed"]
    # The worker's side came through the bridge. (This test's process runs our signals: its
    # `task.sent` is the signal's, and Celery's `task-sent`, bridged, was dropped as a copy.)
    assert {e["data"]["process"] for e in logged(added)[1:] + logged(failed)[1:]} == {ProcessRole.BRIDGE}
    record_all()
    run = Run.objects.get(task_id=added)
    beat = wait_for(lambda: read_beats(client).get(plain_worker), message="the worker's beat in the registry")
    assert (run.state, run.worker, run.worker_instance) == (State.SUCCESS, plain_worker, beat.instance)
    assert (run.name, run.args, run.result) == (ADD, [1, 2], 3)
    assert Run.objects.get(task_id=failed).exception == "ValueError: other app failed on purpose"


def test_a_plain_worker_comes_online_beats_and_goes_offline_on_sigterm(running_bridge, own_other):
    client = store.client()
    hostname = f"plain-{uuid.uuid4().hex[:6]}@test"
    with own_other.worker(events=True, hostname=hostname) as process:
        online = wait_for(lambda: worker_events(client, hostname, EventType.WORKER_ONLINE), 30)
        instance = online[0]["data"]["instance"]
        assert instance.startswith(f"{process.pid}-")
        wait_for(lambda: worker_events(client, hostname, EventType.WORKER_HEARTBEAT))
        record = next(r for r in read_workers(client) if r.hostname == hostname)
        assert (record.instance, record.is_online(time.time())) == (instance, True)
    offline = wait_for(lambda: worker_events(client, hostname, EventType.WORKER_OFFLINE))
    assert [e["data"]["instance"] for e in offline] == [instance]
    record = next(r for r in read_workers(client) if r.hostname == hostname)
    assert record.offline_reason == "shut down"
    assert hostname not in read_beats(client)  # its goodbye, as our heartbeat step says it


def test_a_sigkilled_plain_workers_running_task_becomes_lost(running_bridge, own_other, settings):
    settings.CELERY_LIVE_WORKER_TIMEOUT = 6.0  # Celery beats every 2 s
    client = store.client()
    hostname = f"plain-{uuid.uuid4().hex[:6]}@test"
    with own_other.worker(events=True, hostname=hostname) as process:
        task_id = own_other.app.send_task(SLEEP, args=(60,)).id
        wait_for(lambda: EventType.TASK_STARTED in types_of(task_id), 30)
        # Alive past the timeout: its bridged heartbeats keep its run from the reaper.
        wait_for(lambda: time.time() - logged(task_id)[-1]["ts"] > conf.WORKER_TIMEOUT + 1, 10)
        record_all()
        assert Reaper(client).mark_lost(time.time()) == []
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        instance = Run.objects.get(task_id=task_id).worker_instance
        wait_for(lambda: why_gone(hostname, instance, read_beats(client), time.time()), 15)
    assert Reaper(client).mark_lost(time.time()) == [task_id]
    record_all()
    run = Run.objects.get(task_id=task_id)
    assert run.state == State.LOST
    assert f"worker {hostname} stopped responding" in run.exception


@contextmanager
def sent_events_on(app: Celery) -> Iterator[None]:
    """`app`'s producer sends Celery's `task-sent` too (as a host may configure it)."""
    before = app.conf.task_send_sent_event
    app.conf.task_send_sent_event = True
    try:
        yield
    finally:
        app.conf.task_send_sent_event = before


def test_an_instrumented_worker_with_E_is_not_bridged_and_each_transition_is_logged_once(
    running_bridge, own_other
):
    client = store.client()
    hostname = f"ours-{uuid.uuid4().hex[:6]}@test"
    queue = own_other.queue
    argv = ["worker", "-E", "-P", "prefork", "-c", "1", "-Q", queue, "-n", hostname, "-l", "warning"]
    with celery_process(*argv, "--without-mingle", "--without-gossip"):
        wait_for(lambda: worker_events(client, hostname, EventType.WORKER_ONLINE), 30)
        assert 0 < client.ttl(store.instrumented_key(hostname)) <= store.INSTRUMENTED_TTL
        with sent_events_on(demo_app):  # our before_task_publish and Celery's task-sent
            task_id = demo_app.send_task(
                "apps.assets.tasks.test_task", args=["hi"], kwargs={"delay": 0}, queue=queue
            ).id
        assert final_run(task_id).state == State.SUCCESS
    # Stopped: every Celery event of the worker was sent before the marker.
    until_bridged(own_other.app)
    counts = Counter(types_of(task_id))
    assert counts == Counter(["task.sent", "task.received", "task.started", "task.succeeded"])
    processes = {e["data"]["process"] for e in logged(task_id)}
    assert processes == {ProcessRole.WEB, ProcessRole.WORKER, ProcessRole.POOL}
    mine = [e for e in stream(client) if e.get("worker") == hostname]
    assert mine, "the worker's own events"
    assert [e for e in mine if e["data"].get("process") == ProcessRole.BRIDGE] == []
    assert len(worker_events(client, hostname, EventType.WORKER_ONLINE)) == 1


class Monitor:
    """Redis' MONITOR in a thread: which connection ran which publish (EVALSHA)."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, str]] = []
        self._client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        self._monitor = self._client.monitor()
        self._monitor.__enter__()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while True:
                command = self._monitor.next_command()
                if command["command"].startswith("EVALSHA"):
                    client = f"{command['client_address']}:{command['client_port']}"
                    self.commands.append((client, command["command"]))
        except (redis.ConnectionError, OSError, ValueError):  # closed
            return

    def publishers_of(self, text: str) -> Counter:
        """How many publishes mentioning `text` each connection sent."""
        return Counter(address for address, command in list(self.commands) if text in command)

    def close(self) -> None:
        self._monitor.connection.disconnect()
        self._thread.join(5)


def test_two_bridges_log_every_event_once(running_bridge, other, plain_worker, tmp_path):
    client = store.client()
    monitor = Monitor()
    try:
        with bridge(REDIS_URL, tmp_path / "second.log"):
            task_id = other.app.send_task(ADD, args=(2, 3)).id
            assert final_run(task_id).state == State.SUCCESS
            marker = send_task_sent(other.app, "marker")
            # Both bridges have published the marker, so every event of the run before it.
            wait_for(lambda: len(monitor.publishers_of(marker)) == 2, 15, message="both bridges")
    finally:
        monitor.close()
    assert types_of(task_id) == ["task.sent", "task.received", "task.started", "task.succeeded"]
    # Each bridge published all 4; this process's signal published the `task.sent` first.
    assert sorted(monitor.publishers_of(task_id).values()) == [1, 4, 4]
    beats = worker_events(client, plain_worker, EventType.WORKER_HEARTBEAT)
    assert len({(e["ts"], e["data"]["processed"]) for e in beats}) == len(beats)
    # The second bridge, started after the worker, named it as the first did (no restart).
    assert [r.instance for r in read_workers(client) if r.hostname == plain_worker] == [
        beats[0]["data"]["instance"]
    ]


def test_the_bridge_waits_for_its_broker_and_reconnects_when_it_comes_back(tmp_path):
    port = free_port()
    broker_url = f"redis://127.0.0.1:{port}/0"
    producer = Celery("producer", broker=broker_url, set_as_current=False)

    def broker() -> RedisServer:
        server = RedisServer(tmp_path / "broker", persist=False, port=port)
        server.start()
        return server

    with bridge(broker_url, tmp_path / "bridge.log", listening=False) as running:
        running.wait_for_line(UNREACHABLE)  # nothing listens yet: it says so and waits
        server = broker()
        try:
            running.wait_for_line(LISTENING)
            first = send_task_sent(producer, "first")
            wait_for(lambda: logged(first), message="the first task-sent")
            unreachable = running.output.count(UNREACHABLE)
            server.stop()
            running.wait_for_line(UNREACHABLE, count=unreachable + 1)
            server = broker()
            running.wait_for_line(LISTENING_AGAIN)
            again = Celery("producer", broker=broker_url, set_as_current=False)  # a new connection
            second = send_task_sent(again, "second")
            wait_for(lambda: logged(second), message="the task-sent after the broker came back")
        finally:
            server.stop()
        running.stop(signal.SIGINT)  # Ctrl-C: a clean exit too
    assert types_of(first) == types_of(second) == [EventType.TASK_SENT]
    assert running.output.count(LISTENING) == 1


def test_a_broker_url_no_transport_reads_is_a_one_line_error():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    done = subprocess.run(
        [sys.executable, "manage.py", "bridge_events", "--broker", "nosuch://host/0"],
        cwd=BACKEND_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    said = "CommandError: cannot use broker nosuch://…: 'No such transport: nosuch'"
    assert done.stderr.strip().splitlines() == [said]


def test_over_rabbitmq_a_plain_workers_run_reaches_our_log_in_redis(tmp_path):
    if (why := rabbitmq_reachable(AMQP_URL)) is not None:
        pytest.skip(f"RabbitMQ at {Connection(AMQP_URL).as_uri()} cannot be used ({why})")
    queue = f"bridge-test-{uuid.uuid4().hex[:8]}"
    hostname = f"plain-{uuid.uuid4().hex[:6]}@rabbit"
    try:
        with (
            PlainCelery(tmp_path / "other", AMQP_URL, queue=queue) as rabbit,
            bridge(AMQP_URL, tmp_path / "bridge.log"),
            rabbit.worker(events=True, hostname=hostname),
        ):
            task_id = rabbit.app.send_task(ADD, args=(4, 5)).id
            assert final_run(task_id, timeout=30).state == State.SUCCESS
            assert types_of(task_id) == ["task.sent", "task.received", "task.started", "task.succeeded"]
            assert logged(task_id)[-1]["data"]["result"] == 9
    finally:
        with Connection(AMQP_URL, connect_timeout=3) as connection:
            connection.default_channel.queue_delete(queue)


# --- the loop's parts, on the test run's Redis, without a broker -----------------------------


def celery_event(kind: str, hostname: str = "w@h", **fields) -> dict:
    """A Celery event as the receiver hands it over (sent at 1_790_000_000.5 unless told)."""
    return {"type": kind, "hostname": hostname, "pid": 100, "timestamp": 1_790_000_000.5, "clock": 1} | fields


def test_a_worker_keeps_its_instance_across_bridges_and_a_new_process_gets_a_new_one(redis_client):
    first, second = Instances(redis_client), Instances(redis_client)
    instance = first.resolve(celery_event("worker-online", processed=0))
    assert instance == "100-1790000000500"
    record_worker(redis_client, WorkerRecord(hostname="w@h", instance=instance, ts=1.0, processed=5))
    # A bridge started later: the registry's instance, its pid being this event's.
    assert second.resolve(celery_event("worker-heartbeat", processed=6, clock=9)) == instance
    # The consumer reconnected (online again, as many tasks or more): the same process.
    assert second.resolve(celery_event("worker-online", processed=7, clock=10)) == instance
    # Restarted with the same pid (a container's pid 1): it counts from 0 again.
    assert second.resolve(celery_event("worker-online", processed=0, timestamp=1_790_000_100.0)) == (
        "100-1790000100000"
    )
    # Another pid: another process.
    assert first.resolve(celery_event("task-received", pid=101)) == "101-1790000000500"
    assert first.resolve(celery_event("task-received", pid=True)) is None


def test_one_bad_event_is_logged_once_per_kind_and_skipped(redis_client, caplog):
    bridge = Bridge(REDIS_URL)
    for _ in range(3):
        bridge.handle({"type": "task-started", "hostname": "w@h"})  # no uuid
        bridge.handle(["not", "an", "event"])
        bridge.handle({"type": "task-progress", "uuid": "t"})  # a type it ignores
    said = [r.getMessage() for r in caplog.records if r.name == "celery_live.bridge.receiver"]
    assert said == [
        "celery-live bridge: skipping task-started without a uuid (no task id)",
        "celery-live bridge: skipping not an event (a list, not a mapping)",
    ]
    assert bridge.counts == {"published": 0, "skipped": 0, "ignored": 3, "refused": 6, "dropped": 0}
    assert redis_client.xlen(store.stream_key()) == 0


def test_a_marked_workers_events_are_skipped_but_not_a_task_sent_from_its_host(redis_client):
    bridge = Bridge(REDIS_URL)
    store.mark_instrumented(redis_client, "ours@h")
    for kind in ("worker-online", "worker-heartbeat", "task-received", "task-succeeded"):
        bridge.handle(celery_event(kind, "ours@h", uuid="t1", name="n"))
    bridge.handle(celery_event("task-sent", "ours@h", uuid="t1", name="n", retries=1))  # a retry's
    bridge.handle(celery_event("worker-heartbeat", "plain@h", freq=2.0, timestamp=time.time()))
    assert get_publisher().flush(5)
    assert (bridge.counts["skipped"], bridge.counts["published"]) == (4, 2)
    assert [e["type"] for e in stream(redis_client)] == [EventType.TASK_SENT, EventType.WORKER_HEARTBEAT]
    assert [r.hostname for r in read_workers(redis_client)] == ["plain@h"]


def test_events_the_bridge_cannot_judge_while_redis_is_away_are_held_and_logged_in_order(
    redis_client, monkeypatch, settings
):
    """The instrumented marks are in Redis: while it does not answer, a new worker's events
    wait (they are neither dropped nor logged twice), and beyond the buffer the oldest go,
    counted."""
    bridge = Bridge(REDIS_URL)
    away = unreachable_redis()
    monkeypatch.setattr(bridge.marks, "client", away)
    monkeypatch.setattr(bridge.instances, "client", away)
    settings.CELERY_LIVE_PUBLISH_BUFFER = 3
    for n in range(5):
        bridge.handle(
            celery_event("task-received", "new@h", uuid=f"t{n}", name="n", timestamp=1_790_000_000.0 + n)
        )
    assert (bridge.counts["published"], bridge.counts["dropped"]) == (0, 2)
    monkeypatch.setattr(bridge.marks, "client", redis_client)  # Redis is back
    monkeypatch.setattr(bridge.instances, "client", redis_client)
    bridge.handle(celery_event("task-started", "new@h", uuid="t4", timestamp=1_790_000_010.0))
    assert get_publisher().flush(5)
    logged_ids = [(e["type"], e["task_id"]) for e in stream(redis_client)]
    received = [(EventType.TASK_RECEIVED, f"t{n}") for n in (2, 3, 4)]
    assert logged_ids == [*received, (EventType.TASK_STARTED, "t4")]
    assert bridge.counts == {"published": 4, "skipped": 0, "ignored": 0, "refused": 0, "dropped": 2}
