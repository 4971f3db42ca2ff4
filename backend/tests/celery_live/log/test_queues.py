"""Queue depths read from real brokers (the test run's Redis; RabbitMQ when it is reachable),
and the registry of known queues and their consumers."""

from __future__ import annotations

import time
import uuid

import pytest
from celery import Celery
from kombu import Connection

from celery_live.log import store
from celery_live.log.queues import BrokerQueues, consumers_by_queue, known_queues, remember_queues
from celery_live.log.workers import WorkerRecord, record_worker
from config.celery import app
from tests.celery_live.test_rabbitmq import AMQP_URL, rabbitmq_reachable


def fresh_queue(prefix: str = "cl-depth") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def purge(queue: str) -> None:
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(queue)


def test_a_redis_queue_is_its_list_plus_its_priority_sub_queues_each_counted():
    queue = fresh_queue()
    # kombu's Redis transport puts priority p on the list of the highest step (0, 3, 6, 9)
    # not above it: 0-2 -> 0, 3-5 -> 3, 6-8 -> 6, 9 -> 9.
    priorities = [0, 1, 3, 5, 5, 7, 9, 9, 9]
    try:
        for priority in priorities:
            app.send_task("apps.assets.tasks.noop", queue=queue, priority=priority)
        measured = BrokerQueues(app).measure([queue])[queue]
    finally:
        purge(queue)
    assert measured.depth == len(priorities)
    assert measured.priorities == {"0": 2, "3": 3, "6": 1, "9": 3}
    assert measured.consumers is None  # Redis has no count of its own


def test_a_queue_the_broker_never_had_is_empty():
    broker = BrokerQueues(app)
    assert broker.measure(["never-used-queue"])["never-used-queue"].depth == 0
    assert broker.broker == "redis"
    broker.close()


def beat(client, hostname: str, queues: list[str], ts: float) -> None:
    """A worker's heartbeat in the worker registry, as worker/heartbeat.py writes it (one
    instance per hostname here)."""
    record = WorkerRecord(hostname=hostname, instance=f"{hostname}-1", ts=ts, queues=tuple(queues))
    record_worker(client, record)


def test_a_queues_consumers_are_the_online_workers_whose_last_beat_lists_it(settings):
    settings.CELERY_LIVE_WORKER_TIMEOUT = 10.0
    client = store.client()
    now = time.time()
    beat(client, "a@host", ["celery", "images"], now)
    beat(client, "b@host", ["celery"], now)
    beat(client, "gone@host", ["reports"], now - 60)
    assert consumers_by_queue(client, now) == {"celery": ["a@host", "b@host"], "images": ["a@host"]}
    # A cancelled consumer: the worker's next heartbeat lists its queues without it.
    beat(client, "a@host", ["celery"], now + 1)
    assert consumers_by_queue(client, now + 1) == {"celery": ["a@host", "b@host"]}


def test_a_queue_once_known_stays_known():
    client = store.client()
    remember_queues(client, ["celery", "images", ""])
    remember_queues(client, ["reports"])
    assert known_queues(client) == {"celery", "images", "reports"}


def test_rabbitmq_depth_and_consumers_come_from_a_passive_declare():
    if (why := rabbitmq_reachable(AMQP_URL)) is not None:
        pytest.skip(f"RabbitMQ at {Connection(AMQP_URL).as_uri()} cannot be used ({why})")
    rabbit = Celery("rabbit-depth", broker=AMQP_URL, set_as_current=False)  # not the tests' app
    queue = fresh_queue()
    with rabbit.connection_for_write() as connection:
        try:
            for _ in range(4):
                rabbit.send_task("apps.assets.tasks.noop", queue=queue)  # declares it
            broker = BrokerQueues(rabbit)
            # Sampled in name order: first one RabbitMQ does not have (its 404 closes the
            # channel), then the real one, which must not suffer from it.
            absent = fresh_queue("cl-absent")
            depths = broker.measure([absent, queue])
            assert broker.broker == "amqp"
            assert depths[absent].depth == 0
            assert depths[queue].depth == 4
            assert depths[queue].consumers == 0
            assert depths[queue].priorities is None
            consumer = connection.channel()
            consumer.basic_consume(queue=queue, callback=lambda message: None, no_ack=False)
            assert broker.measure([queue])[queue].consumers == 1
            consumer.close()
            broker.close()
            # Passive: looking at a queue RabbitMQ does not have did not create it.
            with pytest.raises(connection.channel_errors):
                connection.channel().queue_declare(queue=absent, passive=True)
        finally:
            connection.channel().queue_delete(queue)
