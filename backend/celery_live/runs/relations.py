"""A run's canvas relations beyond its own events: the runs it sent, its group, its workflow.

A run's events say its parent, root and group (state.py); which runs name *it* as their
parent, or share its group or root, only the database knows. These are read once per
request by the views that show them (the detail page, the API), never per event.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import F, Q

from celery_live.log.vocabulary import EVENT_KINDS, FINAL_STATES, EventType, State, state_label
from celery_live.runs import history
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
    #: Its workflow as a graph (`workflow_of`), when it has relatives.
    workflow: Workflow | None = None

    @property
    def any(self) -> bool:
        return bool(self.parent or self.root or self.siblings or self.children or self.workflow_size > 1)


def parent_of(run: RunState | Run) -> str:
    """The id of the run that sent `run`, "" if none: never `run` itself (a retry's message
    names its run as its parent; rows recorded before the fold ignored that may still say it)."""
    return run.parent_id if run.parent_id and run.parent_id != run.task_id else ""


def children_of(task_ids: Iterable[str]) -> dict[str, list[str]]:
    """The ids of the runs each of `task_ids` sent, oldest first (one query); never itself
    (`parent_of`)."""
    children: dict[str, list[str]] = {task_id: [] for task_id in task_ids}
    if children:
        rows = (
            Run.objects.filter(parent_id__in=list(children))
            .exclude(task_id=F("parent_id"))
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
    parent_id = parent_of(run)
    linked = {parent_id, run.root_id} - {None, "", run.task_id}
    known = {related.task_id: related for related in _related(Run.objects.filter(task_id__in=linked))}
    # A run the recorder has not written yet is still linked, by its id.
    if parent_id:
        found.parent = known.get(parent_id) or Related(parent_id, "", "")
    if run.root_id and run.root_id != run.task_id:
        found.root = known.get(run.root_id) or Related(run.root_id, "", "")
    columns = ("task_id", "name", "state")
    if run.group_id:
        group = Run.objects.filter(group_id=run.group_id).exclude(task_id=run.task_id)
        found.siblings = _related(group.order_by("first_seen", "id").only(*columns)[:SHOWN])
        found.group_size = 1 + (group.count() if len(found.siblings) == SHOWN else len(found.siblings))
    children = Run.objects.filter(parent_id=run.task_id).exclude(task_id=run.task_id)
    found.children = _related(children.order_by("first_seen", "id").only(*columns)[:SHOWN])
    found.children_count = children.count() if len(found.children) == SHOWN else len(found.children)
    if run.root_id:
        found.workflow_size = Run.objects.filter(root_id=run.root_id).count()
    found.workflow = workflow_of(run)
    return found


# --- the workflow graph -------------------------------------------------------------------

#: Nodes a workflow graph draws at most (a group of thousands is a list's job).
GRAPH_NODES = 60
#: Rounds of "runs sharing a root or a group with those found": a chord sent by the web
#: has a root per header task, tied together by their group only.
_CLOSURE_ROUNDS = 3
#: How many of the log's newest runs a graph looks through for relatives not stored yet
#: (one Redis round trip; the index page reads as many).
RECENT_RUNS = 50


@dataclass
class Node:
    """A run as the workflow graph draws it."""

    task_id: str
    name: str = ""
    state: str = State.PENDING
    parent_id: str = ""
    root_id: str = ""
    group_id: str = ""
    waiting_for: str = ""
    first_seen: float | None = None
    finished_at: float | None = None
    depth: int = 0

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1] if self.name else "not recorded yet"

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def label(self) -> str:
        if self.waiting_for and not self.is_final:
            return EVENT_KINDS[EventType.TASK_WAITING].label
        return state_label(self.state)


def node_of(run: RunState | Run) -> Node:
    """A run (its live state or its database row) as a node."""
    return Node(
        run.task_id,
        run.name or "",
        run.state,
        parent_of(run),
        run.root_id or "",
        run.group_id or "",
        run.waiting_for or "",
        run.first_seen,
        run.finished_at,
    )


def node_depth(node: Node, depths: dict[str, int], group_depths: dict[str, int]) -> int:
    """The node's column: one after its parent's (a chain's next step, a chord's callback
    once sent), one after its group's deepest member while it waits for that group (a
    chord's callback before it is sent), else the first."""
    if node.parent_id in depths:
        return depths[node.parent_id] + 1
    if node.waiting_for and node.group_id in group_depths:
        return group_depths[node.group_id] + 1
    return 0


def place(nodes: list[Node]) -> list[Node]:
    """`nodes`, each given its depth (`node_depth`), parents and headers first whatever
    order they came in (a chord's callback is announced before its header is sent)."""
    by_id = {node.task_id: node for node in nodes}
    depths: dict[str, int] = {}

    def depth(node: Node, seen: frozenset[str]) -> int:
        if node.task_id not in depths:
            seen |= {node.task_id}  # a cycle (bad data) must not recurse forever
            parent = by_id.get(node.parent_id)
            header = [
                other
                for other in nodes
                if node.waiting_for and other.group_id == node.group_id and not other.waiting_for
            ]
            if parent is not None and parent.task_id not in seen:
                depths[node.task_id] = depth(parent, seen) + 1
            elif parent is None and header:
                depths[node.task_id] = 1 + max(
                    (depth(other, seen) for other in header if other.task_id not in seen), default=-1
                )
            else:
                depths[node.task_id] = 0
        return depths[node.task_id]

    for node in nodes:
        node.depth = depth(node, frozenset())
    return nodes


@dataclass
class Workflow:
    """The runs of one workflow as a graph: columns by depth."""

    nodes: list[Node]
    #: Whether it has more runs than `GRAPH_NODES` (those are not drawn).
    more: bool = False

    @property
    def columns(self) -> list[list[Node]]:
        columns: list[list[Node]] = [[] for _ in range(1 + max(node.depth for node in self.nodes))]
        for node in self.nodes:
            columns[node.depth].append(node)
        return columns

    def progress(self, now: float | None = None) -> dict[str, Any]:
        """How far it has got at `now` (default: the clock): done nodes of all, and an ETA
        from the pace so far (elapsed * remaining / done; None until one is done)."""
        now = time.time() if now is None else now
        done = sum(1 for node in self.nodes if node.is_final)
        total = len(self.nodes)
        started = min((node.first_seen for node in self.nodes if node.first_seen), default=now)
        finished = max((node.finished_at or now for node in self.nodes), default=now)
        return {
            "done": done,
            "total": total,
            "fraction": f"{done / total:.3f}" if total else "0",
            "eta": max(0.0, now - started) * (total - done) / done if 0 < done < total else None,
            "took": max(0.0, finished - started) if total and done == total else None,
        }


def workflow_of(run: RunState) -> Workflow | None:
    """The workflow `run` belongs to (runs sharing its root or its group, and theirs), or
    None when it has no relatives. A few queries: the page draws it once, its socket keeps
    it live (stream/workflow.py)."""
    roots = {run.root_id or run.task_id}
    groups = {run.group_id} - {None, ""}
    rows: dict[str, Run] = {}
    for _ in range(_CLOSURE_ROUNDS):
        related = Q(root_id__in=roots) | Q(task_id__in=roots) | Q(group_id__in=groups)
        found = {
            row.task_id: row
            for row in Run.objects.filter(related).order_by("first_seen", "id")[: GRAPH_NODES + 1]
        }
        grown = set(found) - set(rows)
        rows.update(found)
        roots |= {row.root_id for row in found.values() if row.root_id}
        groups |= {row.group_id for row in found.values() if row.group_id}
        if not grown or len(rows) > GRAPH_NODES:
            break
    nodes: dict[str, Node] = {task_id: node_of(row) for task_id, row in rows.items()}
    # The newest runs the log holds, which the recorder may not have stored yet (a chord's
    # callback is announced just before its header's first message, so a page opened
    # right after has it only there): else the graph misses them until a reload.
    for recent in history.recent_runs(RECENT_RUNS):
        if recent.root_id in roots or recent.task_id in roots or recent.group_id in groups:
            nodes[recent.task_id] = node_of(recent)
    # The page's own run as it is at the page's cursor.
    nodes[run.task_id] = node_of(run)
    if len(nodes) < 2:
        return None
    ordered = sorted(nodes.values(), key=lambda node: node.first_seen or 0.0)
    return Workflow(place(ordered[:GRAPH_NODES]), more=len(ordered) > GRAPH_NODES)
