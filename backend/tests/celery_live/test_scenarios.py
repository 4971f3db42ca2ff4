"""Scenarios: the host's declarations loaded and checked; a launch says what it sent and who."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured

from celery_live import scenarios
from celery_live.runs import history
from celery_live.scenarios import Launched, Scenario

HERE = __name__  # the declarations below are named by their dotted paths, as a host's are

#: The names the public interface fixes, in the demo's order.
TOUR = [
    "retry",
    "rate-limit",
    "priority",
    "time-limit",
    "chain",
    "group",
    "chord",
    "countdown",
    "beat",
    "logs",
    "failure",
]


def send_two() -> list[str]:
    return ["first-id", "second-id"]


TWO = Scenario(name="two", title="Two", description="Sends two runs.", send=send_two)
TWO_AGAIN = Scenario(name="two", title="Again", description="The same name.", send=send_two)
NOTHING = Scenario(name="nothing", title="Nothing", description="Sends none.", send=list)
NOT_A_SCENARIO = {"name": "dict"}
BAD_NAME = Scenario(name="Two Words", title="Bad", description="A name with a space.", send=send_two)
NO_TITLE = Scenario(name="untitled", title="", description="No title.", send=send_two)
NO_DESCRIPTION = Scenario(name="undescribed", title="Undescribed", description="", send=send_two)
NOT_CALLABLE = Scenario(name="static", title="Static", description="Send is a list.", send=["id"])


def test_the_demo_declares_the_tours_scenarios_in_order_each_described():
    declared = scenarios.declared()
    assert list(declared) == TOUR
    for item in declared.values():
        assert item.title, item.name
        assert item.description.count(". ") >= 1, item.name  # two or three sentences


@pytest.mark.parametrize(
    ("paths", "says"),
    [
        ("apps.assets.scenarios.RETRY", "must be a list of dotted paths"),
        ([3], "3 is not a dotted path"),
        ([f"{HERE}.MISSING"], "cannot import"),
        ([f"{HERE}.NOT_A_SCENARIO"], "is a dict, not a celery_live.scenarios.Scenario"),
        ([f"{HERE}.BAD_NAME"], "needs a name of lowercase letters, digits and dashes, not 'Two Words'"),
        ([f"{HERE}.NO_TITLE"], "needs a title"),
        ([f"{HERE}.NO_DESCRIPTION"], "needs a description"),
        ([f"{HERE}.NOT_CALLABLE"], "needs send"),
        ([f"{HERE}.TWO", f"{HERE}.TWO_AGAIN"], "repeats the name 'two'"),
    ],
)
def test_a_bad_declaration_is_an_error_naming_the_setting_and_the_entry(settings, paths, says):
    settings.CELERY_LIVE_SCENARIOS = paths
    with pytest.raises(ImproperlyConfigured, match="CELERY_LIVE_SCENARIOS") as raised:
        scenarios.declared()
    assert says in str(raised.value)


def test_an_unknown_name_is_unknown(settings):
    settings.CELERY_LIVE_SCENARIOS = [f"{HERE}.TWO"]
    assert scenarios.get("two") is TWO
    with pytest.raises(scenarios.UnknownScenario, match="unknown scenario 'three'"):
        scenarios.get("three")


def test_a_launch_says_every_run_sent_and_opens_the_first(django_user_model):
    launched = TWO.launch(AnonymousUser())
    assert launched == Launched(("first-id", "second-id"), "first-id", "/tasks/first-id/")
    assert launched.as_dict() == {
        "task_ids": ["first-id", "second-id"],
        "root_id": "first-id",
        "url": "/tasks/first-id/",
    }
    assert history.get_run("first-id") is None  # anonymous: nothing to note


@pytest.mark.django_db
def test_who_launched_it_is_noted_on_the_first_run(django_user_model):
    TWO.launch(django_user_model.objects.create_user("ann"))
    note = history.get_run("first-id").events[-1]
    assert note["type"] == "task.log"
    assert (note["data"]["scenario"], note["data"]["by"]) == ("two", "ann")
    assert history.get_run("second-id") is None


def test_a_scenario_that_sends_nothing_is_a_declaration_error():
    with pytest.raises(ImproperlyConfigured, match="the scenario 'nothing' sent no task"):
        NOTHING.launch(AnonymousUser())
