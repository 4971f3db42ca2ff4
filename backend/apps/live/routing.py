"""WebSocket routes."""

from django.urls import path

from .consumers import EventsConsumer, PageConsumer

websocket_urlpatterns = [
    path("ws/events/", EventsConsumer.as_asgi()),
    path("ws/page/", PageConsumer.as_asgi()),
]
