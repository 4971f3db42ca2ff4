"""What the API answers in: JSON, the same bytes whatever the host's `REST_FRAMEWORK` says."""

from __future__ import annotations

from rest_framework.renderers import JSONRenderer


class JSONOnlyRenderer(JSONRenderer):
    """JSON as `JsonResponse` wrote it before the API moved to DRF: non-ASCII escaped, so a
    run's text that UTF-8 cannot carry (a lone surrogate in a task's result) is still sent,
    and NaN written as Python writes it rather than turned into a server error."""

    ensure_ascii = True
    compact = True
    strict = False
