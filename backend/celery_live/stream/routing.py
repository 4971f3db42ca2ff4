"""WebSocket routes."""

from django.urls import path

from celery_live.stream.consumers import EventsConsumer, PageConsumer

websocket_urlpatterns = [
    path("ws/events/", EventsConsumer.as_asgi()),
    path("ws/page/", PageConsumer.as_asgi()),
]
