"""Users in a stack's database (tests/stack.py), made by its own `manage.py shell`: the
stack's processes and the test process do not share a database connection."""

from __future__ import annotations

import json

from tests.stack import Stack

PASSWORD = "correct-horse-battery-staple"

#: Run in the stack's shell with SPEC (username -> group name or None) and PASSWORD set.
#: Each user gets a logged-in session (as the login view would make) and an API token.
CREATE_USERS = """
import json
from importlib import import_module

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

made = {}
for name, group in SPEC.items():
    user = get_user_model().objects.create_user(name, password=PASSWORD)
    if group:
        user.groups.add(Group.objects.get(name=group))  # made by celery_live's migrations
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session.update({
        SESSION_KEY: str(user.pk),
        BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0],
        HASH_SESSION_KEY: user.get_session_auth_hash(),
    })
    session.create()
    made[name] = {"session": session.session_key, "token": Token.objects.create(user=user).key}
print(json.dumps(made))
"""


def create_users(stack: Stack, spec: dict[str, str | None]) -> dict[str, dict[str, str]]:
    """Users named as `spec`'s keys, each in the group its value names (None: no group, no
    permission), with `PASSWORD`; username -> {"session": its session key, "token": its key}."""
    code = f"SPEC = {spec!r}\nPASSWORD = {PASSWORD!r}\n{CREATE_USERS}"
    return json.loads(stack.shell(code).strip().splitlines()[-1])
