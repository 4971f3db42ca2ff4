"""The groups login mode hands out, as the app's migration makes them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from celery_live.access import APP_LABEL, GROUPS, Action, allows

pytestmark = pytest.mark.django_db


def test_the_migration_makes_each_group_with_exactly_its_permissions():
    made = {
        group.name: sorted(p.codename for p in group.permissions.filter(content_type__app_label=APP_LABEL))
        for group in Group.objects.filter(name__in=GROUPS)
    }
    assert made == {name: sorted(action.value for action in actions) for name, actions in GROUPS.items()}


@pytest.mark.parametrize(("group", "action"), [(g, a) for g, actions in GROUPS.items() for a in Action])
def test_a_member_may_take_the_actions_of_the_group(settings, django_user_model, group, action):
    settings.CELERY_LIVE_REQUIRE_LOGIN = True
    user = django_user_model.objects.create_user(f"member-of-{group}")
    user.groups.add(Group.objects.get(name=group))
    assert allows(user, action) is (action in GROUPS[group])
