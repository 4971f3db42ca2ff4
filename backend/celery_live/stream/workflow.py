"""The workflow graph on a run's detail page, kept live by its socket.

The page draws the graph once (runs/relations.workflow_of); its socket then gets the events
of every run of the workflow, not only the page's own (`WorkflowWatch.wants`), and each
becomes the swap of that run's node, rendered once per event for every viewer
(`render_node`). What differs per viewer is small and kept per socket: whether the node is
on the page yet (a chain's later step, a chord's callback join later: the node is inserted
in its column) and the workflow's progress bar with its ETA.
"""

from __future__ import annotations

import logging

from django.template.loader import render_to_string
from django.utils.html import format_html

from celery_live.log.vocabulary import Event
from celery_live.runs import history
from celery_live.runs.relations import GRAPH_NODES, Node, Workflow, node_depth, node_of, place, workflow_of
from celery_live.runs.state import RunState

logger = logging.getLogger(__name__)


def render_node(node: Node, oob: bool = False) -> str:
    """A node of the graph (`#wf-node-<task_id>`), as an out-of-band swap if `oob`."""
    return render_to_string("celery_live/_workflow_node.html", {"node": node, "oob": oob})


def render_progress(nodes: list[Node], now: float, oob: bool = False) -> str:
    """The workflow's progress bar and ETA (`Workflow.progress`)."""
    context = {**Workflow(nodes).progress(now), "oob": oob}
    return render_to_string("celery_live/_workflow_progress.html", context)


def render_graph(workflow: Workflow, now: float, oob: bool = False) -> str:
    """The whole graph (`#workflow-graph`), its progress as at `now`."""
    context = {"workflow": workflow, "progress": workflow.progress(now), "oob": oob}
    return render_to_string("celery_live/_workflow_graph.html", context)


class WorkflowWatch:
    """One detail socket's view of its run's workflow: which runs it follows and where
    their nodes are on its page."""

    def __init__(self, run: RunState, workflow: Workflow | None, max_nodes: int = GRAPH_NODES) -> None:
        self.max_nodes = max_nodes
        self.nodes: dict[str, Node] = {}
        #: Runs whose first events tied them to the workflow, not yet drawn.
        self.joining: set[str] = set()
        self.columns = 0
        self.roots: set[str] = set()
        self.groups: set[str] = set()
        for node in workflow.nodes if workflow is not None else [node_of(run)]:
            self._add(node)
        #: Whether the page has the graph (a run without relatives has none until one joins).
        self.drawn = workflow is not None

    def _add(self, node: Node) -> None:
        self.nodes[node.task_id] = node
        self.joining.discard(node.task_id)
        self.columns = max(self.columns, node.depth + 1)
        self.roots.add(node.root_id or node.task_id)
        if node.group_id:
            self.groups.add(node.group_id)

    def wants(self, event: Event) -> bool:
        """Whether `event` is about a run of the workflow: one it follows, or one its data
        ties to them (a new run's first events name its parent, root and group)."""
        task_id = event.get("task_id")
        if task_id in self.nodes or task_id in self.joining:
            return True
        if task_id is None or len(self.nodes) + len(self.joining) >= self.max_nodes:
            return False
        data = event.get("data") or {}
        if (
            data.get("parent_id") in self.nodes
            or data.get("root_id") in self.roots
            or data.get("group_id") in self.groups
        ):
            self.joining.add(task_id)  # its later events say none of this
            return True
        return False

    def follow(self, event: Event, run: RunState, node_swap: str) -> str:
        """The swaps for a workflow run's event on this viewer's page: its node (`node_swap`,
        rendered once for all), inserted first if the page lacks it, and the progress bar."""
        node = node_of(run)
        known = self.nodes.get(run.task_id)
        if known is not None:
            node.depth = known.depth
            self.nodes[run.task_id] = node
            parts = [node_swap]
        else:
            depths = {task_id: other.depth for task_id, other in self.nodes.items()}
            group_depths: dict[str, int] = {}
            for other in self.nodes.values():
                if other.group_id and not other.waiting_for:
                    group_depths[other.group_id] = max(group_depths.get(other.group_id, 0), other.depth)
            node.depth = node_depth(node, depths, group_depths)
            parts = [self._insert(node)] if self.drawn else []
            self._add(node)
            if not self.drawn:
                # The page's run had no relatives when it was drawn: the first brings the graph.
                self.drawn = True
                workflow = self.workflow()
                self.columns = len(workflow.columns)
                return render_graph(workflow, event.get("ts") or 0.0, oob=True)
        if not self.drawn:
            return ""
        parts.append(render_progress(list(self.nodes.values()), event.get("ts") or 0.0, oob=True))
        return "".join(parts)

    def workflow(self) -> Workflow:
        """The nodes followed, as a graph drawn afresh."""
        return Workflow(place(sorted(self.nodes.values(), key=lambda node: node.first_seen or 0.0)))

    def _insert(self, node: Node) -> str:
        """The swap that puts a node the page lacks in its column (a new column if need be)."""
        html = render_node(node)
        if node.depth < self.columns:
            return format_html('<div hx-swap-oob="beforeend:#wf-col-{}">{}</div>', node.depth, html)
        column = render_to_string(
            "celery_live/_workflow_column.html", {"index": node.depth, "nodes_html": html}
        )
        return format_html('<div hx-swap-oob="beforeend:#wf-columns">{}</div>', column)


def watch_workflow(task_id: str) -> WorkflowWatch | None:
    """A detail socket's watch of run `task_id`'s workflow (None if its state cannot be read:
    the socket then follows the run alone). Reads Redis and the database: call it in a thread."""
    try:
        run = history.get_run(task_id) or RunState(task_id)
        return WorkflowWatch(run, workflow_of(run))
    except Exception:
        logger.exception("celery-live: could not read the workflow of %s; following the run alone", task_id)
        return None
