"""Scenarios: one-click demonstrations of what Celery does, for the Tour page and the API.

The app knows no task of its own, so it knows no scenario either. A host declares each one
as a `Scenario` in its own code and lists their dotted paths in its settings::

    # shop/scenarios.py
    from celery_live.scenarios import Scenario

    def send_resizes() -> list[str]:
        return [resize.delay(image).id for image in ("a.png", "b.png")]

    RESIZE = Scenario(name="resize", title="Two resizes", send=send_resizes,
                      description="Two runs of the resize task, side by side.")

    # settings.py
    CELERY_LIVE_SCENARIOS = ["shop.scenarios.RESIZE"]

`send` sends the scenario's runs and returns their task ids, the run to open first first
(a workflow's first step). A scenario launch is a launch: it needs the launch permission
and counts toward `CELERY_LIVE_LAUNCH_RATE` (the API's and the page's views check both).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from celery_live import declarations
from celery_live.access import actor
from celery_live.conf import PREFIX, conf
from celery_live.log.publishing import publish
from celery_live.log.vocabulary import EventType

SETTING = f"{PREFIX}SCENARIOS"

#: What a scenario's name may be: it is a URL segment (`/api/scenarios/<name>/`) and an id.
NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class UnknownScenario(LookupError):
    """No scenario of that name is declared."""


@dataclass(frozen=True)
class Launched:
    """What one launch of a scenario sent.

    `task_ids`: every run it sent, the first one first; `root_id`: Celery's `root_id` of that
    first run (a chain's steps all share it; a run sent outside any task, as each task of a
    top-level group or chord header is, is its own root, and the group id links them
    instead); `url`: the first run's page.
    """

    task_ids: tuple[str, ...]
    root_id: str
    url: str

    def as_dict(self) -> dict[str, Any]:
        """The API's answer."""
        return {"task_ids": list(self.task_ids), "root_id": self.root_id, "url": self.url}


@dataclass(frozen=True)
class Scenario:
    """One demonstration: `name` names it in URLs, `title` and `description` (two or three
    sentences on what Celery is doing) are what the page shows, `send()` sends its runs and
    returns their ids, the run to open first first."""

    name: str
    title: str
    description: str
    send: Callable[[], Sequence[str]]

    def launch(self, user: Any) -> Launched:
        """Send the scenario's runs for `user`; who launched it is noted on the first run
        (a `task.log` event) when the user has a name."""
        task_ids = tuple(self.send())
        if not task_ids:
            raise ImproperlyConfigured(f"{SETTING}: the scenario {self.name!r} sent no task")
        first = task_ids[0]
        if by := actor(user):
            publish(
                EventType.TASK_LOG,
                task_id=first,
                data={"message": f"scenario {self.name!r} launched by {by}", "scenario": self.name, "by": by},
            )
        return Launched(task_ids, first, reverse("celery_live:task", args=[first]))


def declared() -> dict[str, Scenario]:
    """The host's scenarios by name, in the setting's order (loaded once per value of the
    setting, as `launchable.declared`)."""
    return declarations.load(SETTING, conf.SCENARIOS, Scenario, "name", _problem)


def get(name: str) -> Scenario:
    """The declared scenario `name`; UnknownScenario if there is none."""
    try:
        return declared()[name]
    except KeyError:
        raise UnknownScenario(f"unknown scenario {name!r}") from None


def _problem(item: Scenario) -> str:
    """What is wrong with a declared scenario ("" if nothing)."""
    if not isinstance(item.name, str) or not NAME.match(item.name):
        return f"needs a name of lowercase letters, digits and dashes, not {item.name!r}"
    for field in ("title", "description"):
        if not isinstance(getattr(item, field), str) or not getattr(item, field):
            return f"needs a {field} (a non-empty string)"
    if not callable(item.send):
        return f"needs send (a function sending its runs), not {item.send!r}"
    return ""
