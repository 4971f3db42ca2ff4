"""Who is on a socket, and whether they may watch.

A browser's socket carries the session cookie; a program sends `Authorization: Token <key>`,
a DRF token (`rest_framework.authtoken`, the API's). `UserMiddleware` puts the user in the
scope; in login mode a socket whose user may not view is refused (`may_view`,
`refusal_frame`): the consumer accepts it, says why in one frame and closes it with a code
the page acts on.

Not Channels' `AuthMiddlewareStack`: its session middleware wraps the socket's `send` (to
save a modified session on HTTP responses, which a socket never sends), so every frame to
every viewer went through one more coroutine, and the consumers no longer saw Daphne's
transport behind `send`, which their back-pressure reads (test_viewer_faults failed). A
socket only reads its session: here that is one lookup when it connects.
"""

from __future__ import annotations

from importlib import import_module
from types import SimpleNamespace
from typing import Any

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.apps import apps
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie
from django.shortcuts import resolve_url

from celery_live.access import DENIED, Action, allows
from celery_live.conf import conf
from celery_live.stream.origin import header

#: DRF's `TokenAuthentication.keyword`: what the Authorization header's value starts with.
TOKEN_KEYWORD = "token"
TOKEN_APP = "rest_framework.authtoken"


def token_key(scope: dict[str, Any]) -> str | None:
    """The key of `Authorization: Token <key>`, "" for a malformed one, None without one."""
    keyword, _, key = header(scope, b"authorization").partition(" ")
    return key.strip() if keyword.lower() == TOKEN_KEYWORD else None


def token_user(key: str) -> Any:
    """The active user holding the token `key`, else an anonymous user."""
    # A host without DRF's token app has no tokens: every token is a bad one.
    if key and apps.is_installed(TOKEN_APP):
        token_model = apps.get_model("authtoken", "Token")
        token = token_model.objects.select_related("user").filter(key=key).first()
        if token is not None and token.user.is_active:
            return token.user
    return AnonymousUser()


def session_user(scope: dict[str, Any]) -> Any:
    """The user the session cookie is logged in as (checked as Django checks a request's)."""
    cookies = parse_cookie(header(scope, b"cookie"))
    store = import_module(settings.SESSION_ENGINE).SessionStore
    return auth.get_user(SimpleNamespace(session=store(cookies.get(settings.SESSION_COOKIE_NAME))))


@database_sync_to_async
def socket_user(scope: dict[str, Any]) -> Any:
    """The socket's user: its token's if it sends one (a bad one: anonymous, not the
    session's, so a program learns its token is wrong), else its session's."""
    key = token_key(scope)
    return session_user(scope) if key is None else token_user(key)


class UserMiddleware(BaseMiddleware):
    """Sets `scope["user"]` (see `socket_user`), as Channels' `AuthMiddleware` does."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        # No cookie and no token: anonymous, without a hop to the database thread, which
        # every socket's lookup shares (a thousand viewers connect at once in the fan-out
        # benchmark).
        credentials = header(scope, b"authorization") or header(scope, b"cookie")
        user = await socket_user(scope) if credentials else AnonymousUser()
        return await self.inner({**scope, "user": user}, receive, send)


def refusal_frame() -> dict[str, str]:
    """What a refused viewer is told: why, and where to log in (the page adds `?next=`)."""
    return {"error": DENIED[Action.VIEW], "login_url": resolve_url(settings.LOGIN_URL)}


async def may_view(user: Any) -> bool:
    """Whether `user` (the scope's) may watch the sockets."""
    if not conf.require_login:  # nothing to look up: no hop to the database thread
        return True
    return await database_sync_to_async(allows)(user, Action.VIEW)  # permissions: the database
