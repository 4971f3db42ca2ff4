"""Who is asking, and whether a write can be trusted to come from them (CSRF).

- `Authorization: Token <key>` (DRF's TokenAuthentication; a key per user from
  `manage.py drf_create_token <username>`): a browser never adds this header by itself, so
  a request carrying it needs no CSRF token.
- A session (the dashboard's login cookie; DRF's SessionAuthentication): the browser sends
  the cookie with any request, so every write needs Django's CSRF check to pass (the
  `X-CSRFToken` header, and an Origin that is the site's own or in CSRF_TRUSTED_ORIGINS).
- Anonymous (possible only with login mode off): a write needs either a valid CSRF token or
  `Content-Type: application/json`. A cross-site page can send a form or a simple fetch
  (urlencoded, multipart, text/plain, or no body at all) without asking, but JSON only
  after a CORS preflight, which the dashboard never grants; so `curl -H 'Content-Type:
  application/json' -d '{}' …/rerun` works login-free while a foreign page's empty POST
  to it is refused with 403 (`anonymous_write_check`, run by `permissions.SameSiteWrites`).
"""

from __future__ import annotations

from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request

from celery_live.api.parsers import sends_json

#: Token first: its `WWW-Authenticate: Token` is what a 401 answers.
AUTHENTICATION_CLASSES = (TokenAuthentication, SessionAuthentication)


def anonymous_write_check(request: Request) -> None:
    """Raise PermissionDenied (403) unless an anonymous write says it is JSON or passes
    Django's CSRF check (the token from the page's cookie, and the Origin)."""
    if not sends_json(request):
        SessionAuthentication().enforce_csrf(request)
