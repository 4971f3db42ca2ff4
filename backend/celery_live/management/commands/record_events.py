"""`manage.py record_events`: run the recorder in the foreground, in its own process.

`make run`, the Procfile and docker-compose.yml run it beside Daphne (started with
CELERY_LIVE_RECORDER=0), so database writes never hold the web process's GIL while it
pushes frames. Several may run: a Redis consumer group shares the events between them.
"""

import contextlib
import signal
import threading

from django.core.management.base import BaseCommand

from celery_live.log.events import set_process_role
from celery_live.log.vocabulary import ProcessRole
from celery_live.runs.recorder import Recorder


class Command(BaseCommand):
    help = "Record celery-live events and runs to the database until interrupted."

    def handle(self, *args, **options):
        set_process_role(ProcessRole.RECORDER)  # what it publishes (the reaper's events) says so
        stop = threading.Event()
        # SIGTERM (supervisors, docker stop) finishes the batch in hand, like Ctrl-C.
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
        self.stdout.write("recording events (Ctrl-C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            Recorder().run_forever(stop)
        self.stdout.write("stopped")
