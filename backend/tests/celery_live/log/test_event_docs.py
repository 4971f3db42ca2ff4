"""docs/api.md's event format names what the vocabulary and the publishers send."""

import re

import pytest

from celery_live.log.beat import BeatEntry
from celery_live.log.vocabulary import EVENT_KINDS, EventType, ProcessRole
from celery_live.runs.state import new_attempt
from tests.paths import ROOT_DIR

API_DOC = (ROOT_DIR / "docs" / "api.md").read_text()


def documented_row(etype: str) -> str:
    """The `data` column of the event table's row for `etype`."""
    match = re.search(rf"^\| `{re.escape(etype)}` \| (.*) \|$", API_DOC, re.MULTILINE)
    assert match, f"no row for {etype} in docs/api.md's event table"
    return match.group(1)


@pytest.mark.parametrize("etype", list(EventType))
def test_every_event_type_is_named_with_the_state_it_puts_its_run_in(etype):
    kind = EVENT_KINDS[etype]
    named = re.search(rf"`{re.escape(etype)}`(?:\s+and\s+`[a-z.]+`)?\s+\(([A-Z]+|none)", API_DOC)
    if kind.state is None and not etype.startswith("task."):
        assert f"`{etype}`" in API_DOC
    else:
        assert named, etype
        assert named.group(1) == (kind.state or "none"), etype


def test_every_process_role_is_documented():
    for role in ProcessRole:
        assert f"`{role}`" in API_DOC


def test_the_beat_and_attempt_fields_are_those_sent():
    sent = {field for field in BeatEntry.__dataclass_fields__ if field not in ("name", "last_task_id")}
    row = documented_row("beat.sent")
    for key in sent | {"entry", "task_id"}:
        assert f"`{key}`" in row, key
    for key in new_attempt(0):
        assert f'"{key}"' in API_DOC, key
