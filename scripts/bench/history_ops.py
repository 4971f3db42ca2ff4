"""What history.py does inside a benchmark stack, with Django set up against its Redis and database.

history.py runs `python -m scripts.bench.history_ops COMMAND [ARG]` in the stack's
environment; each command prints its result, if it has one:

- `last-id`: the newest event's id in the stream (where a viewer resumes from);
- `publish N`: N `task.progress` events for 50 fake runs, pipelined; prints the last id;
- `wait-recorded [--timeout S]`: returns once the recorder has recorded the whole stream;
- `trim`: empties the stream, so only the database holds what was published, then
  publishes one heartbeat (a stream with no events at all reads as a fresh log);
- `fill N`: N finished runs written straight to the database; prints how many it holds;
- `analyze`: ANALYZE, so PostgreSQL plans the list's queries with the new rows counted;
- `first-seen-at INDEX`: repr of the INDEX-th newest run's first_seen (a deep page's cursor).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

#: The catch-up's events belong to this many fake runs.
CATCH_UP_RUNS = 50
#: Runs in the list bench, by state (out of 100).
STATE_MIX = ["SUCCESS"] * 80 + ["FAILURE"] * 10 + ["REVOKED"] * 3 + ["LOST"] * 2 + ["PROGRESS"] * 5


def last_id() -> str:
    """The newest event's id ("0-0" when the stream is empty)."""
    from celery_live.runs import history

    return history.last_event_id()


def publish(n: int) -> str:
    """Publish `n` events through the publish script, 1000 to a pipeline (faster than
    `publishing.publish` one at a time, and the same writes)."""
    from celery_live.log import events, publishing, store

    publisher = publishing.get_publisher()
    script = publisher._ensure()
    pipe = publisher.client.pipeline(transaction=False)
    for i in range(n):
        event = events.make_event(
            "task.progress",
            task_id=f"catchup-{i % CATCH_UP_RUNS}",
            name="bench",
            data={"current": i, "total": n, "result": f"r{i}"},
        )
        # A stream cap of 1 000 000 (not the setting's): the stream must still hold all `n`.
        script(
            keys=[store.stream_key(), store.task_key(event["task_id"]), store.runs_key()],
            args=[events.encode(event), 1_000_000, 86400, event["task_id"], event["ts"]],
            client=pipe,
        )
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    return publisher.client.xrevrange(store.stream_key(), count=1)[0][0]


def recorded() -> bool:
    """Whether the recorder's group has been handed the newest event and acknowledged all."""
    from celery_live.log import publishing, store

    client = publishing.get_publisher().client
    last = client.xrevrange(store.stream_key(), count=1)[0][0]
    group = [g for g in client.xinfo_groups(store.stream_key()) if g["name"] == store.RECORDER_GROUP]
    return bool(group) and group[0]["last-delivered-id"] == last and group[0]["pending"] == 0


def wait_recorded(timeout: float) -> None:
    """Return once `recorded()`; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not recorded():
        if time.monotonic() > deadline:
            raise SystemExit("the recorder did not catch up")
        time.sleep(0.5)


def trim() -> None:
    """Empty the stream, then publish one heartbeat into it."""
    from celery_live.log import publishing, store

    publishing.get_publisher().client.xtrim(store.stream_key(), maxlen=0)
    publishing.publish("worker.heartbeat", worker="x")


def fill(runs: int) -> int:
    """`runs` finished example runs, one every 2 s up to now; about one in 1000 has "needle"
    in its name (what the free-text search case looks for)."""
    from celery_live.runs.models import Run

    rng = random.Random(7)
    now = time.time()
    batch = []
    for i in range(runs):
        first = now - (runs - i) * 2.0
        message = f"user{rng.randrange(5000)}" + (" needle" if i % 997 == 0 else "")
        state = rng.choice(STATE_MIX)
        kwargs = {"name": message, "count": 5}
        batch.append(
            Run(
                task_id=f"bench-{i:07d}",
                name="apps.assets.tasks.example_async_task",
                state=state,
                args=[],
                kwargs=kwargs,
                queue="celery",
                worker=f"celery@w{i % 4}",
                current=5,
                total=5,
                results=[f"{message} - iteration {k}" for k in range(1, 6)],
                result={"status": "completed"} if state == "SUCCESS" else None,
                exception="DemoTaskError: boom" if state == "FAILURE" else "",
                first_seen=first,
                last_event_at=first + 5,
                sent_at=first,
                received_at=first + 0.001,
                started_at=first + 0.002,
                finished_at=first + 5,
                last_event_id=f"{int(first * 1000)}-0",
                last_seq=9,
                search=str([[], kwargs, None]).lower(),
            )
        )
        if len(batch) == 5000:
            Run.objects.bulk_create(batch)
            batch = []
    Run.objects.bulk_create(batch)
    return Run.objects.count()


def analyze() -> None:
    """Refresh the database's planner statistics."""
    from django.db import connection

    connection.cursor().execute("ANALYZE")


def first_seen_at(index: int) -> str:
    """repr of the `index`-th newest run's first_seen (a float the list takes as `before`)."""
    from celery_live.runs.models import Run

    return repr(Run.objects.order_by("-first_seen")[index].first_seen)


COMMANDS: dict[str, Callable[..., Any]] = {
    "last-id": last_id,
    "publish": publish,
    "wait-recorded": wait_recorded,
    "trim": trim,
    "fill": fill,
    "analyze": analyze,
    "first-seen-at": first_seen_at,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command, and its arguments named as its function's parameters."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.history_ops", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("last-id")
    commands.add_parser("publish").add_argument("n", type=int)
    commands.add_parser("wait-recorded").add_argument("--timeout", type=float, default=120)
    commands.add_parser("trim")
    commands.add_parser("fill").add_argument("runs", type=int)
    commands.add_parser("analyze")
    commands.add_parser("first-seen-at").add_argument("index", type=int)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run one command with Django set up (the arguments are checked first)."""
    params = vars(parse_args(argv))
    run = COMMANDS[params.pop("command")]
    import django

    django.setup()
    result = run(**params)
    if result is not None:
        print(result)


if __name__ == "__main__":
    main()
