"""Launchable tasks: the host's declarations loaded and checked; without any, nothing to launch."""

import json
import re

import pytest
from django import forms
from django.core.exceptions import ImproperlyConfigured

from celery_live import launchable
from celery_live.control.launch import NOTHING_LAUNCHABLE, LaunchForm
from celery_live.launchable import Launchable
from celery_live.runs import history

HERE = __name__  # the declarations below are named by their dotted paths, as a host's are


class GreetingForm(forms.Form):
    message = forms.CharField(label="Message")
    delay = forms.FloatField(label="Delay (s)", required=False)


#: By the task's name, and with no `task_kwargs()`: the form's cleaned data are the kwargs.
GREETING = Launchable(kind="greeting", task="apps.assets.tasks.test_task", form_class=GreetingForm)
#: No form: the task's signature, `test_task(message: str, delay: float | None = None)`, is one.
SIGNED = Launchable(kind="signed", task="apps.assets.tasks.test_task")
UNREGISTERED = Launchable(kind="ghost", task="nowhere.tasks.ghost", form_class=GreetingForm)
NOT_A_LAUNCHABLE = {"kind": "dict", "task": "apps.assets.tasks.test_task"}
NO_KIND = Launchable(kind="", task="apps.assets.tasks.test_task", form_class=GreetingForm)
NO_TASK = Launchable(kind="none", task=None, form_class=GreetingForm)
NOT_A_FORM = Launchable(kind="plain", task="apps.assets.tasks.test_task", form_class=dict)
GREETING_AGAIN = Launchable(kind="greeting", task="apps.assets.tasks.noop", form_class=GreetingForm)


def post_json(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def test_the_hosts_declarations_are_loaded_in_order():
    declared = launchable.declared()
    assert list(declared) == ["example", "test", "add"]
    assert declared["example"].task_name == "apps.assets.tasks.example_async_task"
    assert launchable.declared_task_names() == {
        "apps.assets.tasks.example_async_task",
        "apps.assets.tasks.test_task",
        "apps.assets.tasks.add",
    }
    assert LaunchForm().fields["kind"].choices == [
        ("example", "Iterations (example_async_task)"),
        ("test", "Single step (test_task)"),
        ("add", "Add two numbers (add)"),
    ]


def test_a_task_named_by_string_is_found_and_gets_the_forms_cleaned_data(settings):
    settings.CELERY_LIVE_LAUNCHABLE_TASKS = [f"{HERE}.GREETING"]
    form = LaunchForm({"message": "hi", "delay": ""})
    assert form.is_valid(), form.errors
    task, kwargs = form.task_call()
    assert kwargs == {"message": "hi"}  # the empty delay is left to the task's default
    assert task(**kwargs, delay=0) == "Processed: hi"  # the registered task itself


def test_a_declaration_without_a_form_gets_its_tasks_signature(settings):
    settings.CELERY_LIVE_LAUNCHABLE_TASKS = [f"{HERE}.SIGNED"]
    assert list(LaunchForm().fields) == ["kind", "message", "delay"]
    form = LaunchForm({"message": "hi", "delay": ""})
    assert form.is_valid(), form.errors
    assert form.task_call()[1] == {"message": "hi"}
    assert form.task_help() == 'Sleep (2 s by default) and return ``"Processed: {message}"``.'
    assert LaunchForm({"delay": "x"}).errors == {
        "message": ["This field is required."],
        "delay": ["Enter a number."],
    }


def test_a_task_celery_does_not_know_is_a_clear_configuration_error(settings):
    settings.CELERY_LIVE_LAUNCHABLE_TASKS = [f"{HERE}.UNREGISTERED"]
    form = LaunchForm({"message": "hi"})
    assert form.is_valid()
    with pytest.raises(
        ImproperlyConfigured, match=re.escape("'nowhere.tasks.ghost' of kind 'ghost' is not registered")
    ):
        form.task_call()


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("nowhere.launchable.TASK", "cannot import 'nowhere.launchable.TASK'"),
        (f"{HERE}.MISSING", f"cannot import '{HERE}.MISSING'"),
        (f"{HERE}.NOT_A_LAUNCHABLE", f"'{HERE}.NOT_A_LAUNCHABLE' is a dict, not a celery_live"),
        (f"{HERE}.NO_KIND", f"'{HERE}.NO_KIND' needs a kind"),
        (f"{HERE}.NO_TASK", f"'{HERE}.NO_TASK' needs a task"),
        (f"{HERE}.NOT_A_FORM", f"'{HERE}.NOT_A_FORM' needs a form_class"),
        (42, "42 is not a dotted path"),
    ],
)
def test_a_bad_declaration_is_improperly_configured_and_named(settings, entry, problem):
    settings.CELERY_LIVE_LAUNCHABLE_TASKS = ["apps.assets.launchable.EXAMPLE", entry]
    with pytest.raises(ImproperlyConfigured, match=r"^CELERY_LIVE_LAUNCHABLE_TASKS: ") as raised:
        launchable.declared()
    assert problem in str(raised.value)


def test_a_kind_declared_twice_and_a_setting_that_is_no_list_are_refused(settings):
    settings.CELERY_LIVE_LAUNCHABLE_TASKS = [f"{HERE}.GREETING", f"{HERE}.GREETING_AGAIN"]
    with pytest.raises(
        ImproperlyConfigured, match=re.escape(f"'{HERE}.GREETING_AGAIN' repeats the kind 'greeting'")
    ):
        launchable.declared()
    settings.CELERY_LIVE_LAUNCHABLE_TASKS = "apps.assets.launchable.EXAMPLE"
    with pytest.raises(ImproperlyConfigured, match="must be a list of dotted paths"):
        launchable.declared()


@pytest.mark.django_db
def test_without_declarations_the_page_has_no_form_and_launching_is_refused_clearly(client, settings):
    settings.CELERY_LIVE_LAUNCHABLE_TASKS = []
    page = client.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="launch-form"' not in html
    assert "declares no launchable tasks" in html
    response = post_json(client, "/api/tasks/", {"kind": "example", "message": "hi"})
    assert response.status_code == 400
    assert response.json() == {"errors": {"__all__": [NOTHING_LAUNCHABLE]}}
    form = client.post("/launch/", {"message": "hi"}, HTTP_HX_REQUEST="true")
    assert form.status_code == 422
    assert "declares no launchable tasks" in form.content.decode()
    assert history.last_event_id() == "0-0"  # nothing sent
