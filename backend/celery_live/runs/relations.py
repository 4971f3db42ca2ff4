"""A run's canvas relations beyond its own events: the runs it sent, its group, its workflow.

A run's events say its parent, root and group (state.py); which runs name *it* as their
parent, or share its group or root, only the database knows. These are read once per
request by the views that show them (the detail page, the API), never per event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from celery_live.log.vocabulary import state_label
from celery_live.runs.models import Run
from celery_live.runs.state import RunState

#: Related runs the detail page lists by kind; the whole set is a filtered list away.
SHOWN = 50


@dataclass(frozen=True)
class Related:
    """Another run, as a link names it."""

    task_id: str
    name: str
    state: str

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1] if self.name else "not recorded yet"

    @property
    def label(self) -> str:
        return state_label(self.state) if self.state else "?"


@dataclass
class Relations:
    """What the detail page says of a run's relations."""

    parent: Related | None = None
    #: The workflow's first run, when it is not this one.
    root: Related | None = None
    #: The other runs of its group (a chord's header and callback share one).
    siblings: list[Related] = field(default_factory=list)
    group_size: int = 0
    children: list[Related] = field(default_factory=list)
    children_count: int = 0
    #: Runs sharing its root (itself included).
    workflow_size: int = 0

    @property
    def any(self) -> bool:
        return bool(self.parent or self.root or self.siblings or self.children or self.workflow_size > 1)


def children_of(task_ids: Iterable[str]) -> dict[str, list[str]]:
    """The ids of the runs each of `task_ids` sent, oldest first (one query)."""
    children: dict[str, list[str]] = {task_id: [] for task_id in task_ids}
    if children:
        rows = (
            Run.objects.filter(parent_id__in=list(children))
            .order_by("first_seen", "id")
            .values_list("parent_id", "task_id")
        )
        for parent_id, task_id in rows:
            children[parent_id].append(task_id)
    return children


def with_children(runs: list[RunState]) -> list[RunState]:
    """`runs`, each with its `children` filled in (one query for all)."""
    children = children_of(run.task_id for run in runs)
    for run in runs:
        run.children = children[run.task_id]
    return runs


def _related(rows: Iterable[Run]) -> list[Related]:
    return [Related(row.task_id, row.name, row.state) for row in rows]


def relations_of(run: RunState) -> Relations:
    """The run's parent, root, group siblings, children and workflow size (a few queries)."""
    found = Relations()
    linked = {run.parent_id, run.root_id} - {None, run.task_id}
    known = {related.task_id: related for related in _related(Run.objects.filter(task_id__in=linked))}
    # A run the recorder has not written yet is still linked, by its id.
    if run.parent_id:
        found.parent = known.get(run.parent_id) or Related(run.parent_id, "", "")
    if run.root_id and run.root_id != run.task_id:
        found.root = known.get(run.root_id) or Related(run.root_id, "", "")
    columns = ("task_id", "name", "state")
    if run.group_id:
        group = Run.objects.filter(group_id=run.group_id).exclude(task_id=run.task_id)
        found.siblings = _related(group.order_by("first_seen", "id").only(*columns)[:SHOWN])
        found.group_size = 1 + (group.count() if len(found.siblings) == SHOWN else len(found.siblings))
    children = Run.objects.filter(parent_id=run.task_id)
    found.children = _related(children.order_by("first_seen", "id").only(*columns)[:SHOWN])
    found.children_count = children.count() if len(found.children) == SHOWN else len(found.children)
    if run.root_id:
        found.workflow_size = Run.objects.filter(root_id=run.root_id).count()
    return found
