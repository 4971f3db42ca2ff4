"""Logging in and out (login mode): Django's views, the dashboard's pages around them."""

from __future__ import annotations

import pytest

from tests.users import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("login_mode")]


def log_in(client, username: str, next_url: str | None = None):
    data = {"username": username, "password": PASSWORD}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/accounts/login/", data)


def test_the_login_page_is_the_dashboards_with_a_csrf_protected_form(client):
    html = client.get("/accounts/login/?next=/runs/").content.decode()
    assert 'class="topbar"' in html
    assert 'class="login-form"' in html
    assert "csrfmiddlewaretoken" in html
    assert '<input type="hidden" name="next" value="/runs/">' in html
    assert 'id="connection"' not in html  # no live socket on this page
    assert 'id="presenter"' not in html  # nor the presenter's, which would refuse the visitor


def test_logging_in_goes_back_where_the_visitor_was_sent_from(client, make_user):
    make_user("vera", "viewers")
    login_url = client.get("/runs/?state=failure")["Location"]
    assert login_url == "/accounts/login/?next=/runs/%3Fstate%3Dfailure"
    response = log_in(client, "vera", "/runs/?state=failure")
    assert (response.status_code, response["Location"]) == (302, "/runs/?state=failure")
    assert client.get("/runs/?state=failure").status_code == 200


def test_logging_in_without_next_goes_to_the_dashboard(client, make_user):
    make_user("vera", "viewers")
    assert log_in(client, "vera")["Location"] == "/"


def test_a_next_on_another_site_is_ignored(client, make_user):
    make_user("vera", "viewers")
    assert log_in(client, "vera", "https://elsewhere.example/")["Location"] == "/"


def test_a_wrong_password_stays_on_the_login_page_with_the_error(client, make_user):
    make_user("vera", "viewers")
    response = client.post("/accounts/login/", {"username": "vera", "password": "wrong"})
    assert response.status_code == 200
    assert 'class="form-error"' in response.content.decode()
    assert client.get("/").status_code == 302


def test_the_header_shows_the_user_and_a_logout_button(client, make_user):
    client.force_login(make_user("vera", "viewers"))
    html = client.get("/").content.decode()
    assert '<span class="account__name" data-testid="username"' in html
    assert ">vera</span>" in html
    form = html[html.index('<form class="account"') :]
    form = form[: form.index("</form>")]
    assert 'method="post" action="/accounts/logout/"' in form
    assert "csrfmiddlewaretoken" in form


def test_logging_out_takes_a_post_and_lands_on_the_login_page(client, make_user):
    client.force_login(make_user("vera", "viewers"))
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/")
    assert client.get("/").status_code == 302


def test_an_anonymous_visitor_gets_a_log_in_link_only_in_login_mode(client, settings):
    link = '<a class="account__login" href="/accounts/login/">Log in</a>'
    html = client.get("/no-such-page/").content.decode()
    assert link in html
    assert 'id="presenter"' not in html  # its socket would refuse the visitor
    settings.CELERY_LIVE_REQUIRE_LOGIN = False
    html = client.get("/no-such-page/").content.decode()
    assert "account__login" not in html
    assert 'id="presenter"' in html
