"""What survives restarts: every run and every event, written by the recorder."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db import models

from celery_live.log.events import parse_id
from celery_live.runs.state import RunState


class Run(models.Model):
    """One task run, as folded from its events (state.py): a column for each field of
    `RunState` that the row keeps (`RunState.kept_as("row")`), and `search`. Times are
    epoch seconds."""

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
    # Indexed: a run's children, its group and its workflow are looked up by them.
    parent_id = models.CharField(max_length=155, blank=True, default="", db_index=True)
    root_id = models.CharField(max_length=155, blank=True, default="", db_index=True)
    group_id = models.CharField(max_length=155, blank=True, default="", db_index=True)
    waiting_for = models.CharField(max_length=255, blank=True, default="")
    attempts = models.JSONField(default=list)
    eta = models.FloatField(null=True)
    max_retries = models.IntegerField(null=True)
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
        return RunState.from_row(self._state_value)

    def _state_value(self, column: str) -> Any:
        value = getattr(self, column)
        return None if value == "" and column in _text_columns() else value

    @staticmethod
    def fields_from_state(run: RunState) -> dict[str, Any]:
        """The columns for a folded run (all but `task_id`, which `save_run` finds the row by)."""
        text = _text_columns()
        columns = {
            column: "" if value is None and column in text else value
            for column, value in run.kept_as("row").items()
            if column != "task_id"
        }
        # Required columns: a run none of whose events carried a time gets 0.
        columns["last_event_at"] = run.last_event_at or 0
        columns["first_seen"] = run.first_seen or columns["last_event_at"]
        columns["search"] = run.search_text
        return columns


@cache
def _text_columns() -> frozenset[str]:
    """Run's text columns: not nullable, they hold "" where the run has None."""
    return frozenset(
        column.name
        for column in Run._meta.concrete_fields
        if isinstance(column, (models.CharField, models.TextField))
    )


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
