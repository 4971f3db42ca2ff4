"""Login mode and its users, for the page tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group

from tests.users import PASSWORD


@pytest.fixture
def login_mode(settings):
    """CELERY_LIVE_REQUIRE_LOGIN on (the tests' settings turn it off)."""
    settings.CELERY_LIVE_REQUIRE_LOGIN = True


@pytest.fixture
def make_user(django_user_model) -> Callable:
    """`make_user("ann", "viewers")`: a user with `PASSWORD`, in that group (made by the
    app's migration), or in none."""

    def make(username: str, group: str | None = None):
        user = django_user_model.objects.create_user(username, password=PASSWORD)
        if group is not None:
            user.groups.add(Group.objects.get(name=group))
        return user

    return make
