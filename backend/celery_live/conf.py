"""Every setting of celery_live with its default: the one place a host looks them up.

A host sets any of them in its Django settings (`CELERY_LIVE_PAGE_RUNS = 50`); the code
reads them as `conf.PAGE_RUNS`. `from_environment()` reads the same names from
environment variables, typed by their defaults (the demo host and `make run` use it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

PREFIX = "CELERY_LIVE_"

#: Name (without the prefix) -> (default, what it does).
DEFAULTS: dict[str, tuple[Any, str]] = {
    "REDIS_URL": (
        "",
        "Redis holding the event log. Empty: the host's `REDIS_URL` setting, else "
        "`CELERY_BROKER_URL` when it is a Redis URL, else redis://127.0.0.1:6379/0.",
    ),
    "DATA_DIR": ("", "Where `run_dashboard` keeps its private Redis (empty: ./.data)."),
    "STREAM_KEY": ("celery-live:events", "Prefix of every Redis key the log uses."),
    "STREAM_MAXLEN": (200_000, "Events the Redis stream keeps (approximately); the database keeps all."),
    "RETENTION_DAYS": (7, "Days a run stays in the database (`prune_history` removes older ones)."),
    "REQUIRE_LOGIN": (
        None,
        "Every page, API call and socket needs a logged-in user, launching and control a "
        "permission each (`celery_live.access`). Unset (None): on whenever DEBUG is off.",
    ),
    "LAUNCH_RATE": (
        "60/minute",
        "Launches (and re-runs) one user, or one address when anonymous, may make through "
        "the API and the page, as DRF writes rates (`10/second`, `100/hour`); `off`: no limit.",
    ),
    "PAGE_RUNS": (30, "Runs on the launch-and-watch page."),
    "LIST_PAGE_SIZE": (50, "Rows per page of /runs/."),
    "VIEWER_MAX_BUFFER": (
        1024 * 1024,
        "Bytes a viewer's socket may leave unsent in Daphne before it is closed as behind "
        "(4408) and catches up on reconnect: a socket that never reads otherwise holds all "
        "that is sent to it (scripts/bench/slow_viewers.py: 30 such sockets, 133 -> 292 MB).",
    ),
    "VIEWER_QUEUE": (
        20_000,
        "Live events a viewer may fall behind while it catches up before it is closed as "
        "behind (above 500, what the relay reads at once, or a viewer may be closed as it "
        "connects).",
    ),
    "INSTRUMENT": (True, "Publish events from Celery's signals, progress calls and worker heartbeats."),
    "RECORDER": (True, "Each web process runs a recorder thread writing runs and events to the database."),
    "RECORD_INTERVAL": (0.25, "Seconds the recorder lets events gather between two writes."),
    "HEARTBEAT_INTERVAL": (2.0, "Seconds between a worker's heartbeats."),
    "PUBLISH_BUFFER": (
        10_000,
        "Events a process keeps while Redis is away; past it the oldest are dropped and a "
        "gap marker says how many.",
    ),
    "WORKER_TIMEOUT": (
        10.0,
        "A worker silent this long is dead: it is shown offline and its unfinished runs become LOST.",
    ),
    "RECONCILE_AFTER": (30.0, "A run with no event this long is checked against the result backend."),
    "QUEUE_SAMPLE_INTERVAL": (
        0.5,
        "Seconds between two looks at the broker's queue depths (one sampler per stack); "
        "a `queue.depth` event is published only when a queue changed, so at most one per interval.",
    ),
    "LAUNCHABLE_TASKS": (
        [],
        "Dotted paths of the host's `celery_live.launchable.Launchable` declarations: the "
        "tasks the page, the API and the CLI can launch and re-run (the first is the default "
        "kind; none: the page has no launch form and nothing can be re-run).",
    ),
    "SCENARIOS": (
        [],
        "Dotted paths of the host's `celery_live.scenarios.Scenario` declarations: the Tour "
        "page's one-click demonstrations and `/api/scenarios/` (none: the Tour page has none).",
    ),
}


#: Settings whose default is None (decided from other settings) but which are set as booleans.
OPTIONAL_BOOLEANS = {"REQUIRE_LOGIN"}


class Conf:
    """`conf.NAME`: the host's `CELERY_LIVE_NAME` setting, else its default.

    Each value is looked up once, then kept as a plain attribute: every published event
    reads a few of them, and looking up a setting the host left out raises and catches an
    AttributeError inside Django's settings (measured: make_event + the publish script's
    arguments went from 13 to 24 µs an event with uncached lookups). A changed setting
    (`override_settings`, pytest-django's `settings`) drops what was kept.
    """

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"celery_live has no setting {PREFIX}{name}")
        value = getattr(settings, PREFIX + name, DEFAULTS[name][0])
        setattr(self, name, value)
        return value

    def reload(self) -> None:
        """Forget the values kept, so the next reads see the settings as they are now."""
        self.__dict__.clear()

    @property
    def redis_url(self) -> str:
        """The Redis of the event log (see `CELERY_LIVE_REDIS_URL`)."""
        broker = getattr(settings, "CELERY_BROKER_URL", "") or ""
        return (
            self.REDIS_URL
            or getattr(settings, "REDIS_URL", "")
            or (broker if broker.startswith(("redis://", "rediss://", "unix://")) else "")
            or "redis://127.0.0.1:6379/0"
        )

    @property
    def require_login(self) -> bool:
        """Whether the dashboard needs a user (`CELERY_LIVE_REQUIRE_LOGIN`; unset: not DEBUG)."""
        return (not settings.DEBUG) if self.REQUIRE_LOGIN is None else bool(self.REQUIRE_LOGIN)

    @property
    def data_dir(self) -> Path:
        return Path(self.DATA_DIR or Path.cwd() / ".data")


conf = Conf()


@receiver(setting_changed)
def _forget_changed_settings(setting: str, **kwargs: Any) -> None:
    if setting.startswith(PREFIX):
        conf.reload()


def from_environment(environ: os._Environ | dict[str, str] | None = None) -> dict[str, Any]:
    """The `CELERY_LIVE_*` settings set in the environment, typed like their defaults."""
    environ = os.environ if environ is None else environ
    found: dict[str, Any] = {}
    for name, (default, _) in DEFAULTS.items():
        raw = environ.get(PREFIX + name, "")
        if raw == "":
            continue
        if isinstance(default, bool) or name in OPTIONAL_BOOLEANS:
            found[PREFIX + name] = raw.strip().lower() in {"1", "true", "yes", "on"}
        elif isinstance(default, (int, float)):
            found[PREFIX + name] = type(default)(raw)
        elif isinstance(default, list):
            found[PREFIX + name] = [item.strip() for item in raw.split(",") if item.strip()]
        else:
            found[PREFIX + name] = raw
    return found
