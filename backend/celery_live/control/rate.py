"""How often one may launch: `CELERY_LIVE_LAUNCH_RATE` launches (and re-runs) per user, or per
address when anonymous, for the JSON API and the page alike.

Every launch request counts, valid or not: a flood of bad requests costs a validation each.
The counts live in Django's cache (`default`): with the default local-memory cache each
process counts on its own, so replicas behind a load balancer need a shared cache (Redis,
Memcached) for the rate to hold across them.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from rest_framework.exceptions import Throttled
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle

from celery_live.conf import PREFIX, conf

#: `CELERY_LIVE_LAUNCH_RATE` value that turns the limit off.
OFF = "off"


class LaunchThrottle(SimpleRateThrottle):
    """DRF's cache-backed sliding window, at `conf.LAUNCH_RATE`; reads are never counted."""

    scope = "celery_live_launch"

    def get_rate(self) -> str | None:
        rate = conf.LAUNCH_RATE
        return None if rate == OFF else rate

    def get_cache_key(self, request: Any, view: Any) -> str:
        """The user's id, else the address: REMOTE_ADDR only, never X-Forwarded-For, which a
        client may set to anything to get a fresh count on each request (a proxy in front
        should set REMOTE_ADDR, as `daphne --proxy-headers` does)."""
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            ident = f"user-{user.pk}"
        else:
            ident = f"address-{request.META.get('REMOTE_ADDR', '')}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Any, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)

    def wait(self) -> float:
        """Seconds until the next launch is allowed (DRF says None when the rate was lowered
        below the count already made: then the whole window)."""
        wait = super().wait()
        return float(self.duration) if wait is None else wait


def refusal(wait: float | None) -> Throttled:
    """What a launch over the rate is answered, by the API and the page: 429, with
    `wait` (rounded up) as `Retry-After`."""
    return Throttled(wait, detail=f"Too many launches: {PREFIX}LAUNCH_RATE allows {conf.LAUNCH_RATE}.")


def exceeded(request: HttpRequest) -> Throttled | None:
    """Count a launch by `request` (a page's POST): its refusal if it is over the rate, else
    None. (The API's views take `LaunchThrottle` as a throttle class instead.)"""
    throttle = LaunchThrottle()
    return None if throttle.allow_request(request, None) else refusal(throttle.wait())
