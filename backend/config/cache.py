"""The demo's cache: Django's Redis cache, on the Redis the broker and the event log use.

Web replicas share it (the launch rate, `CELERY_LIVE_LAUNCH_RATE`, is counted in it). Only
`clear()` differs from Django's, which is `FLUSHDB`: on a Redis shared with the broker, the
event log and maybe other teams' apps, that would drop every queued task, the log and the
queue bindings under running workers.
"""

from __future__ import annotations

import re

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

#: Keys deleted per DEL command while clearing.
DELETE_BATCH = 1000


def glob_escape(text: str) -> str:
    """`text` as a literal in a Redis MATCH pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


class RedisCache(DjangoRedisCache):
    """Django's Redis cache whose `clear()` deletes its own keys (`KEY_PREFIX`) only."""

    def clear(self) -> bool:
        """Delete every key of this cache (any version); whether there was one."""
        client = self._cache.get_client(write=True)
        # Django's default key function writes "<KEY_PREFIX>:<version>:<key>".
        pattern = f"{glob_escape(self.key_prefix)}:*"
        deleted = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=DELETE_BATCH):
            batch.append(key)
            if len(batch) == DELETE_BATCH:
                deleted += client.delete(*batch)
                batch.clear()
        if batch:
            deleted += client.delete(*batch)
        return deleted > 0
