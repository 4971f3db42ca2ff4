"""WebSocket routes, and the application a host's asgi.py serves them with."""

from typing import Any

from channels.routing import URLRouter
from django.urls import path

from celery_live.stream.auth import UserMiddleware
from celery_live.stream.charts import ChartsConsumer
from celery_live.stream.consumers import EventsConsumer, PageConsumer
from celery_live.stream.origin import SameOriginValidator
from celery_live.stream.presenter import PresenterConsumer

websocket_urlpatterns = [
    path("ws/events/", EventsConsumer.as_asgi()),
    path("ws/page/", PageConsumer.as_asgi()),
    path("ws/charts/", ChartsConsumer.as_asgi()),
    path("ws/present/", PresenterConsumer.as_asgi()),
]


def websocket_application() -> Any:
    """The host's `"websocket"` route: the sockets, each with its user.

    The origin check is outermost: a foreign page is refused at the handshake before its
    cookie or token is looked up. Then the user (`auth.UserMiddleware`: the session's, or
    an `Authorization: Token <key>` header's), whom the consumers refuse in login mode if
    they may not view.
    """
    return SameOriginValidator(UserMiddleware(URLRouter(websocket_urlpatterns)))
