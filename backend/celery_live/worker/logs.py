"""A task's log lines as its run's `task.log` events: {"message", "level", "logger"}.

A task logs with `get_task_logger(__name__)`; those loggers all hang below Celery's
"celery.task" logger, which gets one more handler (`install`, in the worker's processes
only: worker/signals.py). The handler publishes INFO and above, only while a task runs in
the logging thread (Celery's current task), without waiting for Redis (the task must not
wait for its monitor), and never raises into the task. A line longer than
`MAX_MESSAGE` is cut and says so. What celery-live itself logs never goes through it:
its loggers are not below "celery.task", and a line logged while the handler publishes
is dropped (no recursion, whatever a host's logging sends where).
"""

from __future__ import annotations

import logging
import threading

from celery._state import get_current_task

from celery_live.log.publishing import publish
from celery_live.log.vocabulary import EventType

#: The parent of every `get_task_logger` logger (celery.utils.log).
TASK_LOGGER = "celery.task"
#: Characters of one line an event carries; the rest is cut.
MAX_MESSAGE = 2000


def cut(message: str) -> str:
    """`message`, cut to `MAX_MESSAGE` characters with a note saying how long it was."""
    if len(message) <= MAX_MESSAGE:
        return message
    return f"{message[:MAX_MESSAGE]} … [cut: {len(message)} characters]"


class TaskLogHandler(logging.Handler):
    """Publishes the running task's log records as `task.log` events."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self._publishing = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._publishing, "on", False):
            return
        task = get_current_task()
        request = getattr(task, "request", None)
        task_id = getattr(request, "id", None)
        if not task_id:  # not logged by a running task (another thread, or between tasks)
            return
        self._publishing.on = True
        try:
            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            publish(
                EventType.TASK_LOG,
                wait=False,
                task_id=task_id,
                name=task.name,
                worker=getattr(request, "hostname", None),
                data={"message": cut(message), "level": record.levelname, "logger": record.name},
            )
        except Exception:  # a record that cannot be formatted: logging's own report, no raise
            self.handleError(record)
        finally:
            self._publishing.on = False


def install() -> None:
    """Give "celery.task" the handler (once per process) and let its INFO records through.

    The worker's `-l` may be WARNING: the logger then drops INFO records before any
    handler sees them. It is lowered to INFO, and the handlers Celery gave it keep the
    level the worker was started with, so what the worker prints does not change.
    """
    task_logger = logging.getLogger(TASK_LOGGER)
    if any(isinstance(handler, TaskLogHandler) for handler in task_logger.handlers):
        return
    level = task_logger.getEffectiveLevel()
    if level > logging.INFO:
        for handler in task_logger.handlers:
            handler.setLevel(max(handler.level, level))
        task_logger.setLevel(logging.INFO)
    task_logger.addHandler(TaskLogHandler())
