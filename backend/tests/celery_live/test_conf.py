"""The app's settings: a host's value wins, else the documented default; the environment reader types them."""

import pytest

from celery_live.conf import DEFAULTS, conf, from_environment


def test_a_setting_is_the_hosts_value_else_its_default(settings):
    assert not hasattr(settings, "CELERY_LIVE_PAGE_RUNS")  # the demo host leaves it out
    assert conf.PAGE_RUNS == DEFAULTS["PAGE_RUNS"][0] == 30
    settings.CELERY_LIVE_PAGE_RUNS = 12  # a changed setting is seen at once
    assert conf.PAGE_RUNS == 12


def test_an_unknown_setting_is_an_error_naming_it():
    with pytest.raises(AttributeError, match="CELERY_LIVE_PAGE_RUN"):
        _ = conf.PAGE_RUN


def test_every_setting_says_what_it_does():
    assert all(isinstance(help_text, str) and help_text.strip() for _, help_text in DEFAULTS.values())


def test_the_log_redis_is_its_own_setting_else_the_hosts_redis_else_a_redis_broker(settings):
    settings.CELERY_LIVE_REDIS_URL = "redis://log:6379/1"
    assert conf.redis_url == "redis://log:6379/1"
    settings.CELERY_LIVE_REDIS_URL = ""
    settings.REDIS_URL = "redis://host:6379/2"
    assert conf.redis_url == "redis://host:6379/2"
    del settings.REDIS_URL
    settings.CELERY_BROKER_URL = "redis://broker:6379/3"
    assert conf.redis_url == "redis://broker:6379/3"
    settings.CELERY_BROKER_URL = "amqp://guest@rabbit//"  # not a Redis: the usual local one
    assert conf.redis_url == "redis://127.0.0.1:6379/0"


def test_the_environment_gives_settings_typed_like_their_defaults():
    found = from_environment(
        {
            "CELERY_LIVE_PAGE_RUNS": "12",
            "CELERY_LIVE_RECORD_INTERVAL": "0.5",
            "CELERY_LIVE_REQUIRE_LOGIN": "yes",  # default None: typed as a boolean
            "CELERY_LIVE_LAUNCHABLE_TASKS": "a.B, c.D",
            "CELERY_LIVE_STREAM_KEY": "mine:events",
            "CELERY_LIVE_RECORDER": "",  # empty: not set
            "OTHER": "1",
        }
    )
    assert found == {
        "CELERY_LIVE_PAGE_RUNS": 12,
        "CELERY_LIVE_RECORD_INTERVAL": 0.5,
        "CELERY_LIVE_REQUIRE_LOGIN": True,
        "CELERY_LIVE_LAUNCHABLE_TASKS": ["a.B", "c.D"],
        "CELERY_LIVE_STREAM_KEY": "mine:events",
    }
