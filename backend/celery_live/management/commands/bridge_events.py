"""`manage.py bridge_events [--broker URL]`: Celery's own events -> celery-live's log.

For a cluster celery-live is not installed in (celery_live/bridge/): its workers run with
`-E`, its producers with `task_send_sent_event`. Runs in the foreground until SIGTERM or
Ctrl-C (exit 0); prints one line once it listens. The broker is `--broker`, else the
host's `CELERY_BROKER_URL`, else its Celery app's. A URL no transport reads is an error
at once; a broker that does not answer is retried (1 s, 2 s, … up to 30 s), one log line
per attempt. Several may run (replicas): each event is logged once.
"""

from __future__ import annotations

import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from kombu import Connection

from celery_live.bridge.receiver import LISTENING, Bridge
from celery_live.log.events import set_process_role
from celery_live.log.publishing import get_publisher
from celery_live.log.vocabulary import ProcessRole

#: Seconds the events still buffered (Redis away) may take to reach the log on the way out.
FLUSH_TIMEOUT = 5.0


def default_broker_url() -> str | None:
    """The host's broker: its `CELERY_BROKER_URL` setting, else its Celery app's."""
    from celery import current_app

    return getattr(settings, "CELERY_BROKER_URL", None) or current_app.conf.broker_url


def checked_broker_url(url: str | None) -> str:
    """`url` if a transport reads it, else a CommandError saying why (password masked)."""
    if not url:
        raise CommandError("no broker: pass --broker URL or set CELERY_BROKER_URL")
    if "://" not in url:
        raise CommandError(f"--broker {url!r} is not a URL (e.g. redis://host:6379/0, amqp://host//)")
    try:
        Connection(url).transport  # noqa: B018 (resolving the transport checks the scheme)
    except (KeyError, ValueError, ImportError) as exc:
        raise CommandError(f"cannot use broker {url.split('://', 1)[0]}://…: {exc}") from None
    return url


class Command(BaseCommand):
    help = "Publish Celery's own events (workers run with -E) to celery-live's log until interrupted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--broker",
            metavar="URL",
            help="The cluster's broker (default: CELERY_BROKER_URL, else the Celery app's).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        url = checked_broker_url(options.get("broker") or default_broker_url())
        set_process_role(ProcessRole.BRIDGE)
        bridge = Bridge(url, on_ready=self._listening)
        # SIGTERM (supervisors, docker stop) and Ctrl-C stop it alike, without a traceback.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: bridge.stop())
        bridge.run()
        get_publisher().close(FLUSH_TIMEOUT)
        dropped = bridge.counts["dropped"]
        lost = f", {dropped} dropped while Redis was away" if dropped else ""
        self.stdout.write(f"stopped ({bridge.counts['published']} events bridged{lost})")

    def _listening(self, where: str) -> None:
        self.stdout.write(f"{LISTENING} {where} to the log (Ctrl-C stops)")
        self.stdout.flush()
