"""Who presents and who follows (presenter mode, stream/presenter.py), kept in Redis so that
every web replica reads the same answer.

Two keys under the log's prefix:

- the presenter: a hash (seat, name, path) with a TTL. The presenter's socket refreshes it
  with each frame and ping; a socket that closes shortens it to `GRACE` (a page navigating
  reconnects within that and restores it; a closed tab lets the presentation lapse).
- the followers: a sorted set of seats scored by their last ping. Entries older than
  `EXPIRY` no longer count, so a follower whose browser was killed, or whose web replica
  died without running any disconnect handler, drops out by itself.

A seat is a random id a browser tab keeps for its life (sessionStorage) so that it stays the
presenter, or a follower, across the page loads of a presentation. It is never sent to other
browsers: holding a seat is what makes a socket the presenter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from celery_live.conf import conf

#: Seconds a presenter or follower stays counted without a ping (the page pings every 15 s).
EXPIRY = 45
#: Seconds a closed socket's seat is kept for the page it navigates to: longer than the
#: page's ping interval, so a seat whose next page connected on another replica before this
#: close was handled is renewed by that page's ping before it lapses.
GRACE = 20

# Refresh the presenter's TTL (and set its path when one is given) only if `seat` presents:
# one round trip that both checks and acts, so a presenter taken over cannot act after.
_TOUCH = """
if redis.call('hget', KEYS[1], 'seat') ~= ARGV[1] then return 0 end
if ARGV[3] ~= '' then redis.call('hset', KEYS[1], 'path', ARGV[3]) end
redis.call('expire', KEYS[1], ARGV[2])
return 1
"""

# End the presentation (and its followers) only if `seat` presents.
_STOP = """
if redis.call('hget', KEYS[1], 'seat') ~= ARGV[1] then return 0 end
redis.call('del', KEYS[1], KEYS[2])
return 1
"""


def presenter_key() -> str:
    return f"{conf.STREAM_KEY}:presenter"


def followers_key() -> str:
    return f"{conf.STREAM_KEY}:followers"


@dataclass(frozen=True)
class Presenter:
    """Who presents (`seat` stays on the server) and the page they are on."""

    seat: str
    name: str
    path: str


@dataclass(frozen=True)
class Presentation:
    """What every page is told: the presenter (None: nobody presents) and how many follow."""

    presenter: Presenter | None
    watching: int


class Presence:
    """The presence keys, read and written from asyncio code (one client per event loop)."""

    def __init__(self, url: str | None = None) -> None:
        self.client = aioredis.Redis.from_url(
            url or conf.redis_url, decode_responses=True, socket_connect_timeout=2, health_check_interval=30
        )
        self._touch = self.client.register_script(_TOUCH)
        self._stop = self.client.register_script(_STOP)

    async def close(self) -> None:
        await self.client.aclose()

    async def read(self) -> Presentation:
        """The presentation now; followers whose pings lapsed are dropped on the way."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(presenter_key())
            pipe.zremrangebyscore(followers_key(), "-inf", time.time() - EXPIRY)
            pipe.zcard(followers_key())
            fields, _, watching = await pipe.execute()
        if not fields.get("seat"):
            return Presentation(None, 0)
        return Presentation(
            Presenter(fields["seat"], fields.get("name", ""), fields.get("path", "")), watching
        )

    async def start(self, seat: str, name: str, path: str) -> Presenter | None:
        """Make `seat` the presenter; the one it took over from, if any."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(presenter_key())
            pipe.delete(presenter_key())
            pipe.hset(presenter_key(), mapping={"seat": seat, "name": name, "path": path})
            pipe.expire(presenter_key(), EXPIRY)
            pipe.zrem(followers_key(), seat)  # a presenter does not watch itself
            previous, *_ = await pipe.execute()
        if previous.get("seat") and previous["seat"] != seat:
            return Presenter(previous["seat"], previous.get("name", ""), previous.get("path", ""))
        return None

    async def touch(self, seat: str, path: str = "", ttl: int = EXPIRY) -> bool:
        """Keep `seat`'s presentation for `ttl` seconds (at `path`, if given); False if
        `seat` does not present."""
        return bool(await self._touch(keys=[presenter_key()], args=[seat, ttl, path]))

    async def stop(self, seat: str) -> bool:
        """End `seat`'s presentation; False if `seat` does not present."""
        return bool(await self._stop(keys=[presenter_key(), followers_key()], args=[seat]))

    async def follow(self, seat: str, at: float | None = None) -> None:
        """Count `seat` as watching (again), as of `at` (default: now)."""
        await self.client.zadd(followers_key(), {seat: time.time() if at is None else at})

    async def unfollow(self, seat: str) -> None:
        await self.client.zrem(followers_key(), seat)

    async def follows(self, seat: str) -> bool:
        """Whether `seat` is a follower whose last ping has not lapsed."""
        score = await self.client.zscore(followers_key(), seat)
        return score is not None and score > time.time() - EXPIRY

    async def left(self, seat: str, presenting: bool) -> None:
        """`seat`'s socket closed: keep it only for `GRACE` seconds unless it comes back."""
        if presenting:
            await self.touch(seat, ttl=GRACE)
        elif await self.follows(seat):
            await self.follow(seat, at=time.time() - EXPIRY + GRACE)
