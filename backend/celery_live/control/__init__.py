"""What the dashboard sends to Celery: launches (one validation for the page, the API and the
CLI) and control of runs (revoke, terminate, re-run)."""
