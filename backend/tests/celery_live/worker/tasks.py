"""Test-only tasks of the worker tests, importable by a CLI worker too (`-I` this module)."""

import threading
import time

from celery import shared_task
from celery.utils.log import get_task_logger

logger = get_task_logger(__name__)

#: Longer than a task.log event carries (worker/logs.py MAX_MESSAGE).
LONG_LINE = "x" * 5000


@shared_task
def chatty() -> int:
    """Log at each level, a long line, an exception, and from a thread that is no task."""
    logger.debug("not published: below INFO")
    logger.info("line %d of %s", 1, "<b>two</b>")
    logger.warning("careful")
    logger.info(LONG_LINE)
    try:
        raise ValueError("inner")
    except ValueError:
        logger.exception("caught it")
    outside = threading.Thread(target=logger.info, args=("from another thread",))
    outside.start()
    outside.join()
    return 5


@shared_task(bind=True, max_retries=2)
def retry_twice(self) -> str:
    """Fail twice (retrying after 0.2 s), then succeed."""
    if self.request.retries < 2:
        raise self.retry(countdown=0.2, exc=RuntimeError(f"attempt {self.request.retries} failed"))
    return "ok"


@shared_task(autoretry_for=(RuntimeError,), retry_kwargs={"max_retries": 1}, default_retry_delay=0)
def always_fails() -> None:
    """Autoretry once, then fail for good."""
    raise RuntimeError("still broken")


@shared_task
def step(value: int = 0, fail: bool = False) -> int:
    """A chain's step: add one, or fail."""
    if fail:
        raise RuntimeError("step failed")
    return value + 1


@shared_task(time_limit=0.5)
def stuck() -> None:
    """Outlive its hard time limit: the worker's main process kills the pool child."""
    time.sleep(30)
