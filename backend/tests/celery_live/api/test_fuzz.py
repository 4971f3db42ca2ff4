"""Schemathesis against /api/schema/, in process (WSGI): every operation gets its examples and
a bounded, derandomized fuzz (valid and invalid input); no answer is a 5xx, and every one
is one the schema describes (status, content type, headers, body).

A run of a declared task with the schema's example id is recorded first, so the examples
reach a real run (200, 409, a re-run); the fuzz's valid launches reach the broker and are
purged afterwards, so no later test's worker runs them.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from celery_live.api.schema import EXAMPLE_ID
from celery_live.log import publishing
from config.celery import app
from tests.helpers import record_all

pytestmark = pytest.mark.django_db

#: Fuzzed cases per operation (besides the schema's examples).
MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {
        "seed": 20261125,
        "generation": {"mode": "all", "database": "none"},
        # The coverage phase's boundary cases are many and unbounded; stateful links are none.
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)
#: Cases run, by operation (printed at the end of the module).
CASES: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def purge_and_report():
    yield
    app.control.purge()
    print(f"\nschemathesis: {sum(CASES.values())} cases: {dict(CASES)}")


@pytest.fixture
def example_run():
    """A finished run of a declared task, with the id the schema's examples use."""
    events = [
        ("task.sent", {"args": [], "kwargs": {"name": "fuzz", "count": 1, "delay": 0}}),
        ("task.started", {}),
        ("task.progress", {"current": 1, "total": 1, "result": "fuzz - iteration 1"}),
        ("task.succeeded", {"result": {"status": "completed"}}),
    ]
    for event_type, data in events:
        publishing.publish(
            event_type, task_id=EXAMPLE_ID, name="apps.assets.tasks.example_async_task", data=data
        )
    record_all()


# Loaded when the module is collected (from the app, no database needed): schemathesis'
# fixture-based loader does not work with pytest 9.
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(), config=CONFIG)


@pytest.mark.timeout(120)
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_as_its_schema_says_and_never_with_a_5xx(case, example_run):
    CASES[case.operation.label] += 1
    case.call_and_validate(checks=CHECKS)
