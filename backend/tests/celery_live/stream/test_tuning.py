"""A Daphne process tuned for frames: the GIL handed over sooner, its loaded code frozen."""

import gc
import sys

from celery_live.stream.tuning import SWITCH_INTERVAL, tune_web_process


def test_the_switch_interval_is_short_and_what_is_loaded_is_out_of_the_collectors_way():
    before = sys.getswitchinterval()
    try:
        tune_web_process()
        assert sys.getswitchinterval() == SWITCH_INTERVAL
        assert gc.get_freeze_count() > 10_000  # Django, DRF and the URLs, loaded before the freeze
        assert gc.get_threshold()[0] == 50_000
        tune_web_process(0.002)
        assert sys.getswitchinterval() == 0.002
    finally:
        sys.setswitchinterval(before)
