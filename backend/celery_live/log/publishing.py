"""Publishing events to the log (the format is events.py).

Publishing never fails the caller and never loses an event silently. Each process has one
publishing connection (opened on its first event, and again after a fork: prefork pool
children get their own) and one daemon thread, the *pump*:

- A publishing thread writes its event (`EVALSHA` of the script, which each connection
  loads when it opens) and goes on: with `wait=False` it never waits for Redis; with
  `wait=True` it waits (up to 5 s) for the event's id. The event joins the connection's
  *in-flight* queue.
- The pump reads Redis' replies (one line per event; Redis runs one connection's commands
  in order) and drops each confirmed event from the in-flight queue. While events flow it
  lets replies gather for 20 ms between reads: one wake per batch, not per event (measured:
  the pump's CPU per event went from 35 to 5 µs at ~1500 events/s). An error reply is
  logged and counted (`stats()["refused"]`).
- When the connection breaks (Redis killed or restarted: the pump sees the socket close at
  once; no reply for 10 s; a transient error such as `LOADING`, `OOM` or `NOSCRIPT`), every
  unconfirmed event goes back to the front of the process's *buffer*, and the pump
  reconnects (50 ms doubling to 1 s), checks that Redis runs scripts, then publishes the
  buffer in order. Events made meanwhile join the buffer's end (the caller gets no id);
  publishers write directly again only once the buffer is empty, so one process's events
  never reorder.
- The buffer holds `CELERY_LIVE_PUBLISH_BUFFER` events; past that the oldest are dropped
  and counted, and the flush starts with a gap marker (`log.gap`: how many, which runs,
  when, which process) and a `task.log` on each affected run ("n events lost while Redis
  was down"), so a loss is never silent. (An unconfirmed event that is dropped may have
  reached the log: the count can be one or two high, never low.)
- An event sent again may have run the first time (Redis executed it but its reply was
  lost): the script finds its `uid` among its run's last 50 events (the stream's last 200
  for events of no run) and does not add it twice.
- Two publishers may describe one transition: two bridges (bridge/) each receive every
  Celery event, and a producer's `task.sent` comes both from its signal and from Celery's
  `task-sent`. Such an event carries a *dedupe key* (`publish(..., dedupe=...)`): the script
  logs the first event with that key, remembers its "id seq" for `DEDUPE_TTL` s, and answers
  any later one with it, unlogged. Events without a key pay nothing (the same command).
- A pool child publishes what it still holds before it exits (`worker_process_shutdown`),
  other processes at exit; what cannot be published then is logged with its count.

Why replies are read rather than not at all: the previous connection told Redis
`CLIENT REPLY OFF`; after a restart its first writes went into a dead socket with no error
(the issue's repro lost 3 of the first run's 7 events; of 100 events published around a
3 s outage, 72 were lost). Checking that socket before each write would see a restart that
happened before the write, but not the events Redis had not read yet when it died, nor an
event Redis refused (OOM, a flushed script cache); only a reply says an event is in the log.
The cost, from `scripts/bench/overhead.py` (no-op tasks, prefork -c 1; two runs of 5 rounds
each, alternating with the no-reply connection on the same 2-core machine): the worker's
processes used 2.07 CPU s per 1000 tasks (no-reply: 2.24; Celery alone: 1.75-1.78) and
Redis 0.38 s (no-reply: 0.38): sending the script's sha instead of its text pays for
reading the replies. Throughput against Celery alone: -18.5 % (no-reply: -15.9 %), within
the ±10 points these runs swing by.
"""

from __future__ import annotations

import atexit
import codecs
import hashlib
import logging
import os
import select
import socket
import threading
import time
from collections import deque
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from celery_live.conf import conf
from celery_live.log import store
from celery_live.log.events import InvalidEvent, encode, make_event
from celery_live.log.store import runs_key, stream_key, task_key
from celery_live.log.vocabulary import EventType

logger = logging.getLogger(__name__)

# Connecting encodes the host name with the "idna" codec, imported on first use. A fork
# (the prefork pool starting a child) while another thread (the pump, a heartbeat) is in
# that import leaves the child deadlocked on the module's import lock: seen here, a pool
# child hung in its first connect. Imported now, while the process has one thread.
codecs.lookup("idna")


def utf8(text: str) -> bytes:
    """`text` as UTF-8; a lone UTF-16 surrogate (which UTF-8 cannot carry) becomes U+FFFD.

    A surrogate pair left as two code points becomes the character it stands for. One bad
    string in a task's arguments or result must not cost its event.
    """
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


# KEYS: stream, task list (the stream again for an event of no run), runs index.
# ARGV: json, maxlen, ttl, task_id, ts[, resent, uid[, dedupe key, its ttl, the bridge's
# watching key]]. A dedupe key is kept only while a bridge listens (the watching key
# exists): with none, no second copy can come, and a busy producer's `task.sent` keys
# would cost Redis ~200 bytes each for nothing. Replies
# "+<id> <seq>" (one line, which the pump counts). A resent event ('1') that is already in
# the log is not added again: the reply names the copy there; nor is an event whose dedupe
# key an earlier one took: the reply names that one.
_PUBLISH_LUA = """
local is_task = ARGV[4] ~= ''
local dedupe = ARGV[8]
if dedupe then
  local first = redis.call('GET', dedupe)
  if first then return redis.status_reply(first) end
end
if ARGV[6] == '1' then
  local mark = '"uid":"' .. ARGV[7] .. '"'
  if is_task then
    for _, e in ipairs(redis.call('LRANGE', KEYS[2], -50, -1)) do
      if string.find(e, mark, 1, true) then
        local id, seq = string.match(e, '^{"id":"([^"]+)","seq":(%d+)')
        return redis.status_reply(id .. ' ' .. seq)
      end
    end
  else
    for _, entry in ipairs(redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 200)) do
      if string.find(entry[2][2], mark, 1, true) then
        return redis.status_reply(entry[1] .. ' 0')
      end
    end
  end
end
local seq = 0
if is_task then seq = redis.call('LLEN', KEYS[2]) + 1 end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1], 'seq', seq)
if is_task then
  redis.call('RPUSH', KEYS[2], '{"id":"' .. id .. '","seq":' .. seq .. ',' .. string.sub(ARGV[1], 2))
  if seq == 1 then  -- a run's first event: index it, and let its list expire with the retention
    redis.call('EXPIRE', KEYS[2], ARGV[3])
    redis.call('ZADD', KEYS[3], 'NX', ARGV[5], ARGV[4])
  end
end
if dedupe and redis.call('EXISTS', ARGV[10]) == 1 then
  redis.call('SET', dedupe, id .. ' ' .. seq, 'EX', ARGV[9])
end
return redis.status_reply(id .. ' ' .. seq)
"""

_PUBLISH_SHA = hashlib.sha1(_PUBLISH_LUA.encode()).hexdigest()
#: A new connection is used once Redis runs scripts (not while LOADING its data, or BUSY).
_PROBE_LUA = "return 1"
#: Error replies that say "not now" rather than "never": the event goes back to the buffer.
#: NOSCRIPT (the script cache was flushed): the reconnect loads the script again.
_TRANSIENT_ERRORS = frozenset(
    {b"LOADING", b"BUSY", b"MASTERDOWN", b"TRYAGAIN", b"OOM", b"READONLY", b"NOSCRIPT"}
)
#: Seconds `publish(wait=True)` waits for its event's id.
_WAIT_FOR_ID = 5.0
#: Seconds without any reply while events are in flight before the connection counts as dead
#: (a host gone without closing the socket); a killed Redis is seen at once.
_REPLY_TIMEOUT = 10.0
_RECONNECT_FIRST, _RECONNECT_MAX = 0.05, 1.0
#: Seconds the pump lets replies gather between two reads while events flow.
_GATHER = 0.02
#: Events written per lock hold while flushing, so publishers never wait long behind a flush.
_FLUSH_BATCH = 500
#: Affected runs a gap marker names (and gets a `task.log` on).
_GAP_RUNS = 50
#: Seconds a dedupe key names the event that took it: two bridges receive a Celery event
#: within milliseconds of each other, and a buffered event is published within seconds of
#: Redis' return; this is far beyond both. Each key costs Redis ~200 bytes meanwhile
#: (measured over 100,000): a bridge at 100 events/s holds ~12 MB of them. Kept only while
#: a bridge listens (`store.bridge_watch_key`).
DEDUPE_TTL = 600


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


# EVALSHA sha numkeys key1 key2 key3 + 7 arguments: 13 bulk strings (16 with a dedupe key,
# its ttl and the bridge's watching key). The sha, not the script's 1.2 kB: each connection
# loads the script when it opens.
_EVAL_TAIL = b"$7\r\nEVALSHA\r\n" + _bulk(_PUBLISH_SHA.encode()) + _bulk(b"3")
_EVAL_HEAD = b"*13\r\n" + _EVAL_TAIL
_EVAL_HEAD_DEDUPE = b"*16\r\n" + _EVAL_TAIL


class _Item:
    """One event on its way to the log: its `EVALSHA` and, with `wait`, whoever waits for its id."""

    __slots__ = ("body", "dedupe", "done", "event", "reply", "resent", "sent_at")

    def __init__(self, event: dict[str, Any], wait: bool = False, dedupe: str | None = None) -> None:
        self.event = event
        keys, args = Publisher._script_call(event)
        self.body = b"".join(_bulk(utf8(str(field))) for field in (*keys, *args))
        self.dedupe = dedupe
        self.resent = False
        self.sent_at = 0.0
        self.done = threading.Event() if wait else None
        self.reply: str | None = None

    def packed(self) -> bytes:
        """The `EVALSHA` command as written on the socket."""
        resent = _bulk(b"1" if self.resent else b"")
        uid = _bulk(self.event["uid"].encode())
        if self.dedupe is None:
            return _EVAL_HEAD + self.body + resent + uid
        watching = store.bridge_watch_key().encode()
        dedupe = _bulk(utf8(self.dedupe)) + _bulk(b"%d" % DEDUPE_TTL) + _bulk(watching)
        return _EVAL_HEAD_DEDUPE + self.body + resent + uid + dedupe

    def answer(self, reply: str | None) -> None:
        """Tell a waiting publisher its reply (None: buffered or refused, no id for now)."""
        if self.done is not None:
            self.reply = reply
            self.done.set()


def _lost_message(count: int) -> str:
    return f"{count} event{'' if count == 1 else 's'} lost while Redis was down"


class _Gap:
    """What one process had to drop while Redis was away (its buffer was full)."""

    def __init__(self) -> None:
        self.lost = 0
        self.since: float | None = None
        self.until: float | None = None
        self.worker: str | None = None
        #: task_id -> [events lost, name, worker], for the first `_GAP_RUNS` runs.
        self.runs: dict[str, list[Any]] = {}

    def add(self, event: dict[str, Any]) -> None:
        self.lost += 1
        ts = event.get("ts")
        self.since = ts if self.since is None else min(self.since, ts)
        self.until = ts if self.until is None else max(self.until, ts)
        self.worker = self.worker or event.get("worker")
        task_id = event.get("task_id")
        if task_id in self.runs:
            self.runs[task_id][0] += 1
        elif task_id and len(self.runs) < _GAP_RUNS:
            self.runs[task_id] = [1, event.get("name"), event.get("worker")]

    def events(self) -> list[dict[str, Any]]:
        """The gap marker, then a note on each affected run's timeline."""
        process = f"{socket.gethostname()}:{os.getpid()}"
        marker = make_event(
            EventType.LOG_GAP,
            worker=self.worker or socket.gethostname(),
            data={
                "message": _lost_message(self.lost),
                "lost": self.lost,
                "task_ids": list(self.runs),
                "since": self.since,
                "until": self.until,
                "process": process,
            },
        )
        notes = [
            make_event(
                EventType.TASK_LOG,
                task_id=task_id,
                name=name,
                worker=worker,
                data={"message": _lost_message(count), "gap": count},
            )
            for task_id, (count, name, worker) in self.runs.items()
        ]
        return [marker, *notes]


class _Pipe:
    """One process's publishing connection, its in-flight events, its buffer and its pump.

    Everything but the pump's wait for data happens under `lock`. Invariant: `direct`
    (publishers write straight to the socket) implies a connection and an empty buffer.
    """

    def __init__(self, url: str) -> None:
        self.pid = os.getpid()
        self.url = url
        self.lock = threading.Lock()
        self.connection: redis.Connection | None = None
        self.direct = False
        self.inflight: deque[_Item] = deque()
        self.backlog: deque[_Item] = deque()
        self.partial = b""  # the start of a reply line not fully read yet
        self.gap = _Gap()
        self.down_since: float | None = None
        self.thread: threading.Thread | None = None
        self.closing = threading.Event()
        self.wakeup = threading.Event()
        self.published = 0
        self.dropped = 0
        self.refused = 0

    # --- publishers' side (lock held) --------------------------------------------------

    def submit(self, item: _Item) -> bool:
        """Write `item` now, or buffer it behind what waits; True if it was written."""
        if self.thread is None:
            self._start()
        if not self.direct:
            self._buffer(item)
            return False
        assert self.connection is not None
        item.sent_at = time.monotonic()
        self.inflight.append(item)  # before the write: its reply cannot come first
        try:
            self.connection._sock.sendall(item.packed())
        except OSError as exc:
            self._lost(self.connection, exc)
            return False
        return True

    def _start(self) -> None:
        """The process's first event: connect inline (so it leaves at once), start the pump."""
        try:
            self.connection = self._open()
            self.direct = True
        except (redis.RedisError, OSError) as exc:
            self._went_down(exc)
        self.thread = threading.Thread(target=self._pump, name="celery-live-publisher", daemon=True)
        self.thread.start()

    def _buffer(self, item: _Item) -> None:
        self.backlog.append(item)
        item.answer(None)
        self._trim()

    def _trim(self) -> None:
        """Keep the buffer within its bound: drop the oldest, counted for the gap marker."""
        bound = max(0, conf.PUBLISH_BUFFER)
        while len(self.backlog) > bound:
            if not self.gap.lost:
                logger.error(
                    "celery-live: the publish buffer is full (%d events) while Redis is away; "
                    "dropping the oldest events (counted; a gap marker will say how many)",
                    bound,
                )
            self.gap.add(self.backlog.popleft().event)
            self.dropped += 1

    # --- connection state (lock held) --------------------------------------------------

    def _went_down(self, reason: object) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            logger.warning(
                "celery-live: cannot publish to Redis (%s); buffering events until it is back", reason
            )

    def _lost(self, connection: redis.Connection, reason: object) -> None:
        """`connection` broke: what it did not confirm goes back to the front of the buffer."""
        if self.connection is not connection:
            return
        self.connection = None
        self.direct = False
        connection.disconnect()  # shutdown() also wakes the pump if it is waiting on it
        for item in self.inflight:
            item.resent = True  # it may have run: the script will not add it twice
            item.answer(None)
        self.backlog.extendleft(reversed(self.inflight))
        self.inflight.clear()
        self._trim()
        self._went_down(reason)

    def _open(self) -> redis.Connection:
        """A new connection with the script loaded, once Redis runs scripts (not while LOADING)."""
        pool = redis.ConnectionPool.from_url(
            self.url, socket_timeout=5, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)
        )
        connection = pool.make_connection()
        try:
            connection.connect()
            connection.send_command("SCRIPT", "LOAD", _PUBLISH_LUA)
            connection.read_response()
            connection.send_command("EVAL", _PROBE_LUA, 0)
            connection.read_response()
        except BaseException:
            connection.disconnect()
            raise
        return connection

    # --- the pump ------------------------------------------------------------------------

    def _pump(self) -> None:
        """Read replies while connected; reconnect and flush the buffer while not."""
        delay = _RECONNECT_FIRST
        while not self.closing.is_set():
            connection = self.connection
            try:
                if connection is not None:
                    self._read(connection)
                    delay = _RECONNECT_FIRST  # it was up: try again at once
                    continue
                connection = self._open()
                self._flush(connection)
                if self.direct:
                    continue
            except (redis.RedisError, OSError):
                pass
            except Exception:  # a bug here must not stop this process's publishing for good
                logger.exception("celery-live: publisher pump failed; reconnecting")
                with self.lock:
                    if connection is not None:
                        self._lost(connection, "pump failure")
            self.closing.wait(delay)
            delay = min(delay * 2, _RECONNECT_MAX)

    def _read(self, connection: redis.Connection) -> None:
        """Confirm in-flight events as their replies come, until `connection` is gone."""
        poller = select.poll()
        with self.lock:
            if self.connection is not connection:
                return
            poller.register(connection._sock, select.POLLIN)
        while self.connection is connection and not self.closing.is_set():
            if poller.poll(1000):
                self._receive(connection)
                # Let the replies of the next few ms gather before reading again: one wake per
                # batch, not per event, unless a publisher waits for its id (it wakes us).
                self.wakeup.wait(_GATHER)
                self.wakeup.clear()
                continue
            with self.lock:
                if (
                    self.connection is connection
                    and self.inflight
                    and time.monotonic() - self.inflight[0].sent_at > _REPLY_TIMEOUT
                ):
                    self._lost(connection, f"no reply for {_REPLY_TIMEOUT:.0f} s")

    def _receive(self, connection: redis.Connection) -> None:
        """Read what is there and confirm (or refuse) the events it answers."""
        with self.lock:
            if self.connection is not connection:
                return
            sock = connection._sock
            try:
                data = sock.recv(65536)
                while getattr(sock, "pending", lambda: 0)():  # TLS: bytes already decrypted
                    data += sock.recv(65536)
            except OSError as exc:
                self._lost(connection, exc)
                return
            if not data:
                self._lost(connection, "connection closed by Redis")
                return
            *lines, self.partial = (self.partial + data).split(b"\r\n")
            for line in lines:
                if not self.inflight:
                    self._lost(connection, f"unexpected reply {line[:80]!r}")
                    return
                if line[:1] == b"+":
                    self.inflight.popleft().answer(line[1:].decode())
                    self.published += 1
                    continue
                code = line[1:].split(b" ", 1)[0]
                if code in _TRANSIENT_ERRORS:  # this one and all after it: again, later
                    self._lost(connection, line[1:].decode(errors="replace"))
                    return
                item = self.inflight.popleft()
                item.answer(None)
                self.refused += 1
                logger.error(
                    "celery-live: Redis refused %s for task %s: %s",
                    item.event.get("type"),
                    item.event.get("task_id"),
                    line[1:].decode(errors="replace"),
                )

    def _flush(self, connection: redis.Connection) -> None:
        """Publish the gap marker (if any), then the buffer, in order; then go direct."""
        poller = select.poll()
        poller.register(connection._sock, select.POLLIN)
        with self.lock:
            if self.closing.is_set():
                connection.disconnect()
                return
            self.connection = connection
            self.partial = b""
            gap = self.gap
            if gap.lost:
                self.gap = _Gap()
                self.backlog.extendleft(reversed([_Item(event) for event in gap.events()]))
            waiting = len(self.backlog)
        while True:
            with self.lock:
                if self.connection is not connection:
                    return  # lost again: the pump starts over
                if not self.backlog:
                    self.direct = True
                    if self.down_since is not None:
                        logger.warning(
                            "celery-live: Redis is back after %.1f s; %d buffered events published%s",
                            time.monotonic() - self.down_since,
                            waiting,
                            f" after a gap marker ({gap.lost} dropped)" if gap.lost else "",
                        )
                        self.down_since = None
                    return
                batch = [self.backlog.popleft() for _ in range(min(len(self.backlog), _FLUSH_BATCH))]
                now = time.monotonic()
                for item in batch:
                    item.sent_at = now
                self.inflight.extend(batch)
                try:
                    connection._sock.sendall(b"".join(item.packed() for item in batch))
                except OSError as exc:
                    self._lost(connection, exc)
                    return
            if poller.poll(0):
                self._receive(connection)

    # --- ending --------------------------------------------------------------------------

    def drain(self, timeout: float) -> bool:
        """Wait until everything is confirmed (True) or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        while self.inflight or self.backlog or self.gap.lost:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> int:
        """Stop the pump and close the connection; the number of events left unpublished."""
        self.closing.set()
        with self.lock:
            if self.connection is not None:
                self.connection.disconnect()
                self.connection = None
            self.direct = False
            left = len(self.inflight) + len(self.backlog) + self.gap.lost
        if self.thread is not None:
            self.thread.join(2)
        return left


class Publisher:
    """Publishes events to the log: one connection, buffer and pump per process (see above)."""

    def __init__(self, url: str | None = None) -> None:
        self._url = url
        self._client: redis.Redis | None = None
        self._script = None
        self._lock = threading.Lock()
        self._pipe: _Pipe | None = None
        self.errors = 0  # exceptions `publish()` caught
        # A fork (prefork pool) while another thread holds the lock must not leave the child
        # with a lock nobody will release.
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def _ensure(self):
        """The client for reads and the publish script, for callers batching it themselves."""
        if self._script is None:
            with self._lock:
                if self._script is None:
                    client = (
                        redis.Redis.from_url(self._url, **store.CLIENT_OPTIONS)
                        if self._url
                        else store.client()
                    )
                    self._client = client
                    self._script = client.register_script(_PUBLISH_LUA)
        return self._script

    @staticmethod
    def _script_call(event: dict[str, Any]) -> tuple[list[str], list[Any]]:
        """The publish script's keys and arguments for `event` (also for callers that run
        the script in a pipeline of their own, with `_ensure()`)."""
        task_id = event.get("task_id") or ""
        ttl = max(1, conf.RETENTION_DAYS) * 86400
        keys = [stream_key(), task_key(task_id) if task_id else stream_key(), runs_key()]
        return keys, [encode(event), conf.STREAM_MAXLEN, ttl, task_id, event["ts"]]

    def _here(self) -> _Pipe:
        """This process's pipe (a forked child makes its own: the parent's is the parent's)."""
        pipe = self._pipe
        if pipe is None or pipe.pid != os.getpid():
            with self._lock:
                pipe = self._pipe
                if pipe is None or pipe.pid != os.getpid():
                    pipe = self._pipe = _Pipe(self._url or conf.redis_url)
        return pipe

    def publish(self, event: dict[str, Any], dedupe: str | None = None) -> dict[str, Any] | None:
        """Append `event` to the log and wait for its `id` and `seq`; return it with them.

        None if it could not be written now (Redis away, or events buffered before it) or
        was not confirmed within 5 s: it is then published later, in order, by the pump.
        With `dedupe` (a Redis key, `store.dedupe_key`), an event whose key an earlier one
        took is not logged, and gets that one's `id` and `seq`.
        """
        item = _Item(event, wait=True, dedupe=dedupe)
        pipe = self._here()
        with pipe.lock:
            written = pipe.submit(item)
        pipe.wakeup.set()
        if not written or not item.done.wait(_WAIT_FOR_ID) or item.reply is None:
            return None
        event_id, _, seq = item.reply.partition(" ")
        event["id"], event["seq"] = event_id, int(seq)
        return event

    def publish_nowait(self, event: dict[str, Any], dedupe: str | None = None) -> None:
        """Append `event` to the log without waiting: a socket write, or a place in the buffer
        (`dedupe`: as for `publish`)."""
        item = _Item(event, dedupe=dedupe)
        pipe = self._here()
        with pipe.lock:
            pipe.submit(item)

    def flush(self, timeout: float) -> bool:
        """Wait until this process's events are all in the log (True) or `timeout` passes."""
        pipe = self._pipe
        return pipe is None or pipe.pid != os.getpid() or pipe.drain(timeout)

    def close(self, timeout: float = 2.0) -> int:
        """Publish what this process still holds (up to `timeout`), then close; events lost.

        Called at exit (and by a pool child before it leaves): what could not be published
        is logged, never dropped silently. The next event opens a new connection.
        """
        pipe = self._pipe
        if pipe is None or pipe.pid != os.getpid():
            return 0
        pipe.drain(timeout)
        with self._lock:
            self._pipe = None
        left = pipe.stop()
        if left:
            logger.error(
                "celery-live: %d events could not be published before this process stopped "
                "publishing (Redis unreachable)",
                left,
            )
        return left

    def stats(self) -> dict[str, int]:
        """This process's counts: published (confirmed), in flight, buffered, dropped, refused."""
        pipe = self._pipe
        counts = {"published": 0, "in_flight": 0, "buffered": 0, "dropped": 0, "refused": 0}
        if pipe is not None and pipe.pid == os.getpid():
            counts = {
                "published": pipe.published,
                "in_flight": len(pipe.inflight),
                "buffered": len(pipe.backlog),
                "dropped": pipe.dropped,
                "refused": pipe.refused,
            }
        return {**counts, "errors": self.errors}

    @property
    def client(self) -> redis.Redis:
        self._ensure()
        assert self._client is not None
        return self._client


_publisher = Publisher()
atexit.register(_publisher.close)


def get_publisher() -> Publisher:
    return _publisher


def publish(
    type: EventType | str, *, wait: bool = True, dedupe: str | None = None, **fields: Any
) -> dict[str, Any] | None:
    """Build an event and publish it. Never raises: a failure is logged and counted instead.

    Publishing happens inside Celery's signal handlers and tasks; an exception there
    must not fail the user's task, but a lost event must not go unnoticed either. While
    Redis is away events are buffered (see the module's docstring) and None is returned.
    `wait=False` does not wait for Redis (see `Publisher.publish_nowait`): for events a
    running task publishes, whose order only matters within its own process. `dedupe`: a
    key (`store.dedupe_key`) that makes the event count once however many publish it.
    """
    try:
        event = make_event(type, **fields)
    except InvalidEvent:
        _publisher.errors += 1
        logger.exception("celery-live: refusing to publish an invalid event")
        return None
    try:
        if not wait:
            _publisher.publish_nowait(event, dedupe)
            return event
        return _publisher.publish(event, dedupe)
    except Exception:
        _publisher.errors += 1
        logger.exception(
            "celery-live: could not publish %s for task %s; the run is reconciled later",
            type,
            fields.get("task_id"),
        )
        return None
