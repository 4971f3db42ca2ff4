"""Who may do what: one answer for the pages, the JSON API and the sockets.

Login-free (`CELERY_LIVE_REQUIRE_LOGIN` off, the local demo bound to 127.0.0.1): everyone
may view, launch and control. Login mode (on, and the default whenever DEBUG is off): every
action needs a logged-in user holding its permission; the groups in `GROUPS` (made by a
migration) hold them, and a superuser holds all.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from celery_live.conf import conf

APP_LABEL = "celery_live"


class Action(StrEnum):
    """What a user may do, named after the permission (codename on the Run model) it needs."""

    VIEW = "view_run"
    LAUNCH = "launch_run"
    CONTROL = "control_run"

    @property
    def permission(self) -> str:
        """The permission as `User.has_perm` takes it: `celery_live.launch_run`."""
        return f"{APP_LABEL}.{self.value}"


#: The groups a migration makes, with the actions their members may take.
GROUPS: dict[str, tuple[Action, ...]] = {
    "viewers": (Action.VIEW,),
    "operators": (Action.VIEW, Action.LAUNCH, Action.CONTROL),
}

#: What a refused user is told, by action.
DENIED: dict[Action, str] = {
    Action.VIEW: "You need to log in as a user allowed to view the dashboard.",
    Action.LAUNCH: "You need to log in as a user allowed to launch tasks.",
    Action.CONTROL: "You need to log in as a user allowed to revoke, terminate and re-run tasks.",
}


def allows(user: Any, action: Action) -> bool:
    """Whether `user` (a Django user, anonymous included, or None) may take `action`."""
    if not conf.require_login:
        return True
    return bool(user is not None and user.is_authenticated and user.has_perm(action.permission))


def actor(user: Any) -> str:
    """The name recorded with a control action: the username, or "" for an anonymous user."""
    return user.get_username() if user is not None and user.is_authenticated else ""
