"""Presenter mode's socket (`/ws/present/`) through the real ASGI app, the real channels-redis
layer and the test run's Redis: delivery, counts, takeover, refusals.

Two web replicas are covered by the browser test (web/test_presenter_browser.py), whose
presenter and follower are on two Daphne processes; login mode by test_presenter_auth.py,
against a Daphne in login mode.
"""

from __future__ import annotations

import json
import time

import pytest
from channels.testing import WebsocketCommunicator

from celery_live.log import presence
from celery_live.stream import presenter
from celery_live.stream.consumers import Close
from config.asgi import application

ORIGIN = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


class Page:
    """One browser tab's presenter socket: its seat, and the frames it was sent."""

    def __init__(self, seat: str) -> None:
        self.seat = seat
        self.communicator = WebsocketCommunicator(application, f"/ws/present/?seat={seat}", headers=ORIGIN)

    async def open(self) -> dict:
        connected, _ = await self.communicator.connect()
        assert connected
        return await self.expect("state")

    async def send(self, **frame) -> None:
        await self.communicator.send_to(text_data=json.dumps(frame))

    async def frame(self, timeout: float = 5) -> dict:
        return json.loads(await self.communicator.receive_from(timeout))

    async def expect(self, kind: str, timeout: float = 5) -> dict:
        """The next frame of type `kind`, past any state frames (counts change all the time);
        any other frame fails."""
        while True:
            frame = await self.frame(timeout)
            if frame.get("type") == kind:
                return frame
            assert frame.get("type") == "state", frame

    async def state_where(self, predicate, timeout: float = 5) -> dict:
        """The first state frame (skipping others) for which `predicate` holds."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.frame(max(0.01, deadline - time.monotonic()))
            if frame.get("type") == "state" and predicate(frame):
                return frame

    async def silent(self) -> bool:
        return await self.communicator.receive_nothing(timeout=0.3)

    async def close(self) -> None:
        await self.communicator.disconnect()


@pytest.fixture
async def pages():
    """`pages("a", "b")`: open tabs with those seats (padded to a valid seat); all closed after."""
    opened: list[Page] = []

    async def open_pages(*names: str) -> list[Page]:
        for name in names:
            page = Page(name.ljust(16, "0"))
            await page.open()
            opened.append(page)
        return opened[-len(names) :]

    yield open_pages
    for page in opened:
        await page.close()


async def present(page: Page, path: str = "/") -> None:
    await page.send(action="present", path=path)
    await page.state_where(lambda f: f["role"] == "presenter")


async def follow(page: Page, watching: int) -> None:
    await page.send(action="follow")
    await page.state_where(lambda f: f["role"] == "follower" and f["watching"] == watching)


async def test_a_presenters_page_and_pointing_reach_followers_only(pages):
    alice, bob, carol = await pages("alice", "bob", "carol")
    await present(alice, "/runs/")
    state = await carol.state_where(lambda f: f["presenter"] is not None)
    assert state["presenter"] == {"name": "", "path": "/runs/"}
    assert state["role"] == "viewer"
    await follow(bob, watching=1)

    await alice.send(action="navigate", path="/tasks/abc-123/?tab=log")
    assert await bob.expect("navigate") == {"type": "navigate", "path": "/tasks/abc-123/?tab=log"}
    await alice.send(action="highlight", target="run-abc-123")
    assert await bob.expect("highlight") == {"type": "highlight", "target": "run-abc-123"}

    await carol.state_where(lambda f: f["watching"] == 1)
    assert await carol.silent()  # a page not following is not moved
    # The seat, which makes a socket the presenter, is never sent to a browser.
    assert "alice" not in json.dumps(state)


async def test_everyone_sees_the_watching_count_go_up_and_down(pages):
    alice, bob, carol, dave = await pages("alice", "bob", "carol", "dave")
    await present(alice)
    await follow(bob, watching=1)
    await follow(carol, watching=2)
    await dave.state_where(lambda f: f["watching"] == 2 and f["presenter"] is not None)
    await alice.state_where(lambda f: f["watching"] == 2)
    await carol.send(action="unfollow")
    await carol.state_where(lambda f: f["role"] == "viewer" and f["watching"] == 1)
    await alice.state_where(lambda f: f["watching"] == 1)
    await dave.state_where(lambda f: f["watching"] == 1)


async def test_a_follower_whose_pings_stop_drops_out_of_the_count(pages, monkeypatch):
    monkeypatch.setattr(presenter, "TICK", 0.2)
    alice, bob = await pages("alice", "bob")
    await present(alice)
    await follow(bob, watching=1)
    await alice.state_where(lambda f: f["watching"] == 1)
    # Its tab was killed (or its web replica died): no ping for longer than the expiry.
    await presenter.hub().presence.follow(bob.seat, at=time.time() - presence.EXPIRY - 1)
    assert (await alice.state_where(lambda f: f["watching"] == 0))["role"] == "presenter"


async def test_a_new_presenter_takes_over_and_the_old_one_is_told(pages):
    alice, bob, carol = await pages("alice", "bob", "carol")
    await present(alice, "/runs/")
    await follow(carol, watching=1)
    await bob.send(action="present", path="/queues/")
    ended = await alice.expect("ended")
    assert ended["reason"] == "Someone took over the presentation"
    assert (await alice.expect("state"))["role"] == "viewer"
    await bob.state_where(lambda f: f["role"] == "presenter")
    # The follower follows the new presenter, and the old one moves nobody any more.
    state = await carol.state_where(lambda f: f["presenter"]["path"] == "/queues/")
    assert state["role"] == "follower"
    assert state["watching"] == 1
    await alice.send(action="navigate", path="/workers/")
    assert (await alice.expect("error"))["error"] == "only the presenter moves the followers' pages"
    assert await carol.silent()


async def test_stopping_ends_the_presentation_for_its_followers(pages):
    alice, bob = await pages("alice", "bob")
    await present(alice)
    await follow(bob, watching=1)
    await alice.send(action="stop")
    assert (await bob.expect("ended"))["reason"] == "the presentation ended"
    state = await bob.expect("state")
    assert state["role"] == "viewer"
    assert state["presenter"] is None
    await bob.send(action="follow")
    assert (await bob.expect("error"))["error"] == "nobody is presenting"


async def test_a_page_load_keeps_the_tabs_role(pages):
    alice, bob = await pages("alice", "bob")
    await present(alice)
    await follow(bob, watching=1)
    await alice.close()
    await bob.close()
    # The same tabs' next pages (same seats): still presenting, still following.
    again_alice, again_bob = Page(alice.seat), Page(bob.seat)
    try:
        assert (await again_alice.open())["role"] == "presenter"
        state = await again_bob.open()
        assert state["role"] == "follower"
        assert state["watching"] == 1
    finally:
        await again_alice.close()
        await again_bob.close()


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("not json", "frames must be JSON objects"),
        ("[1, 2]", "frames must be JSON objects"),
        (
            '{"action": "dance"}',
            "action must be one of present, stop, follow, unfollow, navigate, highlight, ping",
        ),
        ('{"action": "navigate", "path": "javascript:alert(1)"}', "path must be"),
        ('{"action": "navigate", "path": "https://evil.example/"}', "path must be"),
        ('{"action": "navigate", "path": "//evil.example/runs/"}', "path must be"),
        ('{"action": "navigate", "path": "/\\\\evil.example/"}', "path must be"),
        ('{"action": "navigate", "path": "/runs/\\n"}', "path must be"),
        ('{"action": "navigate", "path": "/admin/"}', "path must be"),
        ('{"action": "navigate", "path": 7}', "path must be"),
        ('{"action": "highlight", "target": "<img src=x onerror=alert(1)>"}', "target must be"),
        ('{"action": "highlight"}', "target must be"),
        ("x" * 5000, "frames must be at most 4096 characters"),
    ],
)
async def test_a_bad_frame_gets_an_error_and_moves_nobody(pages, frame, error):
    alice, bob = await pages("alice", "bob")
    await present(alice)
    await follow(bob, watching=1)
    await alice.communicator.send_to(text_data=frame)
    assert (await alice.expect("error"))["error"].startswith(error)
    assert await bob.silent()
    # The socket is still open and still the presenter's.
    await alice.send(action="navigate", path="/runs/")
    assert (await bob.expect("navigate"))["path"] == "/runs/"


async def test_a_followers_frames_move_nobody(pages):
    alice, bob, carol = await pages("alice", "bob", "carol")
    await present(alice)
    await follow(bob, watching=1)
    await follow(carol, watching=2)
    await bob.send(action="navigate", path="/workers/")
    assert (await bob.expect("error"))["error"] == "only the presenter moves the followers' pages"
    await bob.send(action="highlight", target="run-x")
    assert (await bob.expect("error"))["error"] == "only the presenter moves the followers' pages"
    assert await carol.silent()


async def test_a_flood_of_frames_is_cut_at_the_rate_limit(pages):
    alice, bob = await pages("alice", "bob")
    await present(alice)
    await follow(bob, watching=1)
    sent = presenter.BURST * 2
    began = time.monotonic()
    for _ in range(sent):
        await alice.send(action="highlight", target="run-x")
    refused = 0
    for _ in range(sent):  # one answer (an error) per refused frame, none for the others
        if await alice.communicator.receive_nothing(timeout=0.5):
            break
        refused += (await alice.expect("error"))[
            "error"
        ] == f"too many frames: at most {presenter.RATE} a second"
    elapsed = time.monotonic() - began
    passed = 0
    while not await bob.communicator.receive_nothing(timeout=0.3):
        passed += (await bob.expect("highlight"))["target"] == "run-x"
    assert refused + passed == sent
    # The burst, less the frame that started the presentation, plus what refilled meanwhile.
    assert presenter.BURST - 1 <= passed <= presenter.BURST + presenter.RATE * elapsed


async def test_a_bad_seat_is_refused_with_4400():
    communicator = WebsocketCommunicator(application, "/ws/present/?seat=short", headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    assert "seat must be" in json.loads(await communicator.receive_from(5))["error"]
    assert await communicator.receive_output(5) == {"type": "websocket.close", "code": Close.BAD_REQUEST}


async def test_a_presentation_whose_presenter_is_gone_ends_for_everyone(pages, monkeypatch):
    monkeypatch.setattr(presenter, "TICK", 0.2)
    alice, bob = await pages("alice", "bob")
    await present(alice)
    await follow(bob, watching=1)
    # The presenter's tab was killed and its socket's close never handled (its replica died).
    await presenter.hub().presence.client.delete(presence.presenter_key())
    assert (await bob.expect("ended"))["reason"] == "the presentation ended"
    state = await bob.expect("state")
    assert state["role"] == "viewer"
    assert state["presenter"] is None


async def test_a_closed_followers_tab_drops_out_after_the_grace_unless_its_next_page_is_open(
    pages, monkeypatch
):
    monkeypatch.setattr(presenter, "TICK", 0.2)
    monkeypatch.setattr(presence, "GRACE", 0.5)
    alice, bob, carol = await pages("alice", "bob", "carol")
    await present(alice)
    await follow(bob, watching=1)
    await follow(carol, watching=2)
    await alice.state_where(lambda f: f["watching"] == 2)
    # Bob's next page connected before his last page's close was handled: he stays.
    bobs_next = Page(bob.seat)
    assert (await bobs_next.open())["role"] == "follower"
    await bob.close()
    await carol.close()  # Carol closed her tab
    try:
        await alice.state_where(lambda f: f["watching"] == 1)
        assert await alice.communicator.receive_nothing(timeout=1)
    finally:
        await bobs_next.close()


async def test_a_host_without_a_channel_layer_has_no_presenter_mode(settings):
    del settings.CHANNEL_LAYERS
    page = Page("alice".ljust(16, "0"))
    connected, _ = await page.communicator.connect()
    assert connected
    assert json.loads(await page.communicator.receive_from(5))["error"] == presenter.NO_LAYER
    assert await page.communicator.receive_output(5) == {"type": "websocket.close", "code": Close.BAD_REQUEST}
