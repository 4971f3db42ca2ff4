"""Errors with DEBUG off, in the product's words: JSON under the API, its own pages elsewhere.

This module is also a URLconf (the `urls` marker): the app mounted under /dash/, with the
handlers, so the API's folder is seen to come from the routes, not from a fixed "/api/".
"""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.urls import include, path

from celery_live.web import errors

pytestmark = pytest.mark.django_db

urlpatterns = [path("dash/", include("celery_live.urls"))]
handler404 = "celery_live.web.errors.handler404"


def test_an_unknown_page_gets_the_products_404_page(client, settings):
    assert settings.DEBUG is False
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert 'class="topbar"' in html
    assert errors.NOT_FOUND in html


def test_a_views_own_404_message_is_shown(client):
    response = client.get("/tasks/never-seen/")
    assert response.status_code == 404
    assert "No such task" in response.content.decode()


def test_an_unknown_address_under_the_api_gets_json(client):
    response = client.get("/api/no-such-endpoint/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"errors": {"__all__": [errors.NOT_FOUND]}}


@pytest.mark.urls(__name__)
def test_the_api_is_found_where_the_host_mounted_it(client):
    assert client.get("/dash/api/nothing/").json() == {"errors": {"__all__": [errors.NOT_FOUND]}}
    assert client.get("/api/nothing/")["Content-Type"].startswith("text/html")


def test_a_server_error_gets_a_self_contained_page_or_json():
    page = errors.handler500(RequestFactory().get("/runs/"))
    assert page.status_code == 500
    html = page.content.decode()
    assert errors.SERVER_ERROR in html
    assert "<style>" in html
    assert "/static/" not in html  # nothing to fetch from a server in trouble
    api = errors.handler500(RequestFactory().get("/api/tasks/"))
    assert (api.status_code, api["Content-Type"]) == (500, "application/json")


def test_permission_denied_gets_the_403_page_or_json(rf, django_user_model):
    request = rf.get("/runs/")
    request.user = django_user_model.objects.create_user("vera")
    page = errors.handler403(request, PermissionDenied("Not for you."))
    assert page.status_code == 403
    assert "Not for you." in page.content.decode()
    api = errors.handler403(rf.get("/api/tasks/"), PermissionDenied())
    assert api.status_code == 403
    assert api["Content-Type"] == "application/json"
