"""What survives restarts: every run and every event, written by the recorder."""

from __future__ import annotations

from typing import Any

from django.db import models

from celery_live.log.events import parse_id
from celery_live.runs.state import RunState


class Run(models.Model):
    """One task run, as folded from its events (state.py). Times are epoch seconds."""

    task_id = models.CharField(max_length=155, unique=True)
    name = models.CharField(max_length=255, blank=True, default="", db_index=True)
    state = models.CharField(max_length=16, db_index=True)
    attempt = models.PositiveIntegerField(default=0)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    queue = models.CharField(max_length=255, blank=True, default="", db_index=True)
    worker = models.CharField(max_length=255, blank=True, default="", db_index=True)
    worker_instance = models.CharField(max_length=64, blank=True, default="")
    current = models.IntegerField(default=0)
    total = models.IntegerField(null=True)
    results = models.JSONField(default=list)
    result = models.JSONField(null=True)
    exception = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    first_seen = models.FloatField(db_index=True)
    last_event_at = models.FloatField()
    sent_at = models.FloatField(null=True)
    received_at = models.FloatField(null=True)
    started_at = models.FloatField(null=True)
    finished_at = models.FloatField(null=True)
    last_event_id = models.CharField(max_length=32)
    last_seq = models.IntegerField(default=0)
    rerun_of = models.CharField(max_length=155, blank=True, default="", db_index=True)
    #: Lower-cased JSON of args, kwargs and result, for free-text search.
    search = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-first_seen", "-id"]
        indexes = [
            models.Index(fields=["-first_seen", "-id"], name="run_newest"),
            models.Index(fields=["state", "-first_seen"], name="run_state_newest"),
        ]
        permissions = [
            ("launch_run", "Can launch tasks from the dashboard"),
            ("control_run", "Can revoke, terminate and re-run tasks"),
        ]

    def __str__(self) -> str:
        return f"{self.name}[{self.task_id}] {self.state}"

    def to_state(self) -> RunState:
        """The run as the views render it (without its events)."""
        return RunState(
            task_id=self.task_id,
            name=self.name or None,
            state=self.state,
            attempt=self.attempt,
            args=self.args,
            kwargs=self.kwargs,
            queue=self.queue or None,
            worker=self.worker or None,
            worker_instance=self.worker_instance or None,
            current=self.current,
            total=self.total,
            iteration_results={i + 1: r for i, r in enumerate(self.results or [])},
            result=self.result,
            exception=self.exception or None,
            traceback=self.traceback or None,
            sent_at=self.sent_at,
            received_at=self.received_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            rerun_of=self.rerun_of or None,
            last_id=self.last_event_id,
            last_seq=self.last_seq,
            first_seen=self.first_seen,
            last_event_at=self.last_event_at,
        )

    @staticmethod
    def fields_from_state(run: RunState) -> dict[str, Any]:
        """The columns for a folded run."""
        last_ts = run.last_event_at or 0
        return {
            "name": run.name or "",
            "state": run.state,
            "attempt": run.attempt,
            "args": run.args,
            "kwargs": run.kwargs,
            "queue": run.queue or "",
            "worker": run.worker or "",
            "worker_instance": run.worker_instance or "",
            "current": run.current,
            "total": run.total,
            "results": run.results,
            "result": run.result,
            "exception": run.exception or "",
            "traceback": run.traceback or "",
            "first_seen": run.first_seen or last_ts,
            "last_event_at": last_ts,
            "sent_at": run.sent_at,
            "received_at": run.received_at,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "last_event_id": run.last_id or "",
            "last_seq": run.last_seq,
            "rerun_of": run.rerun_of or "",
            "search": run.search_text,
        }


class Event(models.Model):
    """One event exactly as it was published, ordered by its stream id."""

    event_id = models.CharField(max_length=32, unique=True)
    stream_ms = models.BigIntegerField()
    stream_seq = models.IntegerField()
    task_id = models.CharField(max_length=155, blank=True, default="", db_index=True)
    type = models.CharField(max_length=32)
    ts = models.FloatField(db_index=True)
    body = models.JSONField()

    class Meta:
        ordering = ["stream_ms", "stream_seq"]
        indexes = [models.Index(fields=["stream_ms", "stream_seq"], name="event_order")]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type} {self.task_id}"

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Event:
        ms, seq = parse_id(event["id"])
        body = {k: v for k, v in event.items()}
        return cls(
            event_id=event["id"],
            stream_ms=ms,
            stream_seq=seq,
            task_id=event.get("task_id") or "",
            type=event["type"],
            ts=event.get("ts") or 0,
            body=body,
        )
