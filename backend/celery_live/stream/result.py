"""A finished run's result as the page shows it: JSON, without repeating its iterations.

A task that reports each iteration with `report_progress` often returns the same list
again (the demo's `results`); the card lists the iterations already, so the result says
where they are instead of printing them twice.
"""

from __future__ import annotations

import json
from typing import Any

from celery_live.runs.state import RunState

#: Stands in for the repeated list while the result is dumped; replaced by `_LISTED`.
_PLACEHOLDER = "\x00iterations\x00"
_LISTED = "[… the {n} iterations listed]"


def result_json(run: RunState) -> str:
    """The run's result as indented JSON, a top-level value equal to its iterations elided."""
    result: Any = run.result
    iterations = run.results
    repeated = None
    if iterations and isinstance(result, dict):
        repeated = next((key for key, value in result.items() if value == iterations), None)
    if repeated is None:
        return json.dumps(result, indent=2, ensure_ascii=False, default=str)
    text = json.dumps({**result, repeated: _PLACEHOLDER}, indent=2, ensure_ascii=False, default=str)
    return text.replace(json.dumps(_PLACEHOLDER), _LISTED.format(n=len(iterations)), 1)
