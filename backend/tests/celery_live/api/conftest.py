"""Login mode and its users (the page tests' fixtures), and API tokens."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token

from tests.celery_live.web.conftest import login_mode, make_user

__all__ = ["login_mode", "make_user"]


@pytest.fixture
def token_for() -> Callable:
    """`token_for(user)`: the `Authorization` header of a new API token of `user`."""

    def make(user) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=user).key}"}

    return make


@pytest.fixture(autouse=True)
def fresh_launch_counts():
    """Each test counts its launches from zero (the launch rate keeps them in the cache)."""
    cache.clear()
