"""The bridge: Celery's own event stream -> celery-live's event log.

A cluster celery-live is not installed in (another team's workers, a standalone dashboard)
still says what it does when its workers run with `-E` (`worker_send_task_events`) and its
producers with `task_send_sent_event`. The bridge (`manage.py bridge_events`) listens to
those events on the broker, without importing the cluster's code, and publishes our events,
so its runs are stored, reaped and shown like any other.

- `translate.py`: one Celery event -> one of our events (pure; a small bounded memory of
  each task's name and attempt, which later Celery events lack).
- `receiver.py`: the loop: receives, skips workers that run our worker side (their signals
  say more; `store.instrumented_key`), keeps bridged workers in the worker registry, and
  publishes each event with a dedupe key, so two bridges, or a bridge and our signals,
  log each transition once.
"""
