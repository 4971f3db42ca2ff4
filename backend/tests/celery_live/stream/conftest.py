"""Fixtures shared by the socket tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stack import Stack, start_web_only


@pytest.fixture(scope="module")
def web(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A real Daphne in login mode, one per test module, on a SQLite database of its own
    (where tests/users.py makes that module's users). In-process login-mode socket tests
    that touch the database in asgiref's shared thread break later socket tests: these run
    against this Daphne instead."""
    database = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]) / "db.sqlite3"
    stack = start_web_only(CELERY_LIVE_REQUIRE_LOGIN="1", DATABASE_URL=f"sqlite:///{database}")
    yield stack
    stack.stop()
