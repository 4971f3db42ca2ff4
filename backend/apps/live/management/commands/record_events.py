"""`manage.py record_events`: run the recorder in the foreground (Daphne runs one already)."""

import threading

from django.core.management.base import BaseCommand

from apps.live.recorder import Recorder


class Command(BaseCommand):
    help = "Record celery-live events and runs to the database until interrupted."

    def handle(self, *args, **options):
        self.stdout.write("recording events (Ctrl-C stops)")
        try:
            Recorder().run_forever(threading.Event())
        except KeyboardInterrupt:
            self.stdout.write("stopped")
