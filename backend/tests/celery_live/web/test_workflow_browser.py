"""The tour's live extras in Chromium (real Daphne, prefork worker, recorder): a chord's
workflow graph on a detail page going live until its callback succeeds after its header,
explain mode annotating the timeline, and the architecture diagram's dot moving through
Celery's stages."""

import time
import uuid

import pytest
from celery import chord

from apps.assets import tasks
from tests.browser import new_page, wait_live

pytestmark = pytest.mark.browser

NODE_STATES = """() => Object.fromEntries([...document.querySelectorAll('.wf-node')].map(node => [
    node.id.slice('wf-node-'.length),
    node.dataset.state + (node.classList.contains('wf-node--waiting') ? ':waiting' : ''),
]))"""


def open_at(browser, url, width=1280):
    page = new_page(browser)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(url)
    wait_live(page)
    return page


def send_chord(delays=(2.0, 5.0), callback_delay=0.3):
    """A chord of `test_task`s sent from here, as a web process would: (header ids, callback id)."""
    header = [
        tasks.test_task.si(f"header {i}", delay).set(task_id=str(uuid.uuid4()))
        for i, delay in enumerate(delays)
    ]
    callback = tasks.test_task.si("callback", callback_delay).set(task_id=str(uuid.uuid4()))
    chord(header)(callback)
    return [sig.id for sig in header], callback.id


def test_a_chords_graph_goes_live_until_its_callback_succeeds_after_its_header(browser, stack, artifacts_dir):
    header, callback = send_chord()
    page = open_at(browser, f"{stack.url}/tasks/{header[0]}/")
    graph = page.locator("[data-testid=workflow-graph]")
    graph.locator(f"#wf-node-{callback}").wait_for(timeout=10_000)
    # The callback waits in the column after its header's.
    assert page.locator("#wf-col-0 .wf-node").count() == 2
    assert page.locator(f"#wf-col-1 #wf-node-{callback}").count() == 1
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = page.evaluate(NODE_STATES)
        seen.append(states)
        if states.get(callback) == "SUCCESS":
            break
        if len(seen) == 8:
            page.screenshot(path=str(artifacts_dir / "workflow-graph-midrun.png"), full_page=True)
        time.sleep(0.1)
    assert seen[-1] == {header[0]: "SUCCESS", header[1]: "SUCCESS", callback: "SUCCESS"}
    # Live, not at load: the page saw the callback waiting while its header ran. Its
    # message goes when the last header task stores its result, which may reach the page
    # just before that task's own "succeeded"; it succeeds only after both.
    assert any(s[callback] == "PENDING:waiting" and s[header[1]] != "SUCCESS" for s in seen), seen
    for states in seen:
        if not states[callback].endswith(":waiting"):
            assert states[header[0]] == "SUCCESS", states
        if states[callback] == "SUCCESS":
            assert states[header[1]] == "SUCCESS", states
    assert page.locator("[data-testid=workflow-progress]").inner_text().startswith("3 / 3 done")
    assert "all done in" in page.locator("[data-testid=workflow-eta]").inner_text()
    page.screenshot(path=str(artifacts_dir / "workflow-graph-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    graph.screenshot(path=str(artifacts_dir / "workflow-graph-390.png"))
    page.context.close()


def test_explain_mode_annotates_the_timeline_and_is_remembered(browser, stack, artifacts_dir):
    result = tasks.test_task.delay("explained", 0.2)
    page = open_at(browser, f"{stack.url}/tasks/{result.id}/")
    page.locator("#timeline [data-type='task.succeeded']").wait_for(timeout=15_000)
    note = page.locator("#timeline [data-type='task.started'] [data-testid=explain]")
    assert not note.is_visible()  # hidden until asked for
    page.get_by_role("button", name="Explain").click()
    assert page.evaluate("document.body.classList.contains('explain')")
    assert note.is_visible()
    assert note.locator("[data-testid=explain-process]").inner_text() == "worker's pool child"
    assert note.locator("[data-testid=explain-signal]").inner_text() == "task_prerun"
    assert "is now running the task's function" in note.inner_text()
    sent = page.locator("#timeline [data-type='task.sent'] [data-testid=explain]")
    assert sent.locator("[data-testid=explain-signal]").inner_text() == "before_task_publish"
    assert "put the message on queue celery" in sent.inner_text()
    page.screenshot(path=str(artifacts_dir / "explain-1280.png"), full_page=True)
    page.reload()
    wait_live(page)
    assert page.locator("#explain-toggle").get_attribute("aria-pressed") == "true"  # remembered
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator("#timeline").screenshot(path=str(artifacts_dir / "explain-390.png"))
    page.context.close()


DOT_WATCH = """() => {
  window.__dots = [];
  const seen = new WeakSet();
  const look = () => document.querySelectorAll('#diagram-dots .dot').forEach(dot => {
    const last = window.__dots.filter(d => d.id === dot.id).pop();
    const stage = dot.dataset.stage;
    if (!last || last.stage !== stage) {
      window.__dots.push({id: dot.id, stage, same: seen.has(dot),
                          moving: dot.querySelector('.dot__marker').getAnimations().length > 0});
    }
    seen.add(dot);
  });
  new MutationObserver(look).observe(document.getElementById('diagram-dots'),
                                     {subtree: true, childList: true, attributes: true});
}"""


def test_the_diagram_dot_moves_through_the_stages_as_its_events_arrive(browser, stack, artifacts_dir):
    page = open_at(browser, f"{stack.url}/tour/")
    page.evaluate(DOT_WATCH)
    result = tasks.test_task.delay("dot", 1.5)
    dot = page.locator(f"#dot-{result.id}")
    dot.wait_for(timeout=10_000)
    page.locator(f"#dot-{result.id}.dot--worker").wait_for(timeout=10_000)
    page.screenshot(path=str(artifacts_dir / "diagram-1280.png"), full_page=True)
    page.locator(f"#dot-{result.id}.dot--backend").wait_for(timeout=15_000)
    moves = [d for d in page.evaluate("window.__dots") if d["id"] == f"dot-{result.id}"]
    assert [m["stage"] for m in moves] == ["broker", "worker", "backend"]
    # The same element each time, its marker sliding (a CSS transition), not a new one.
    assert all(m["same"] and m["moving"] for m in moves[1:]), moves
    assert "Succeeded" in dot.inner_text()  # the screen reader's text
    feed = page.locator("#event-feed")
    assert feed.locator(f"[data-type='task.succeeded'] a[href='/tasks/{result.id}/']").count() == 1
    assert feed.locator(".feed__item").first.get_attribute("data-type") == "task.succeeded"  # newest first
    # A finished dot fades out and leaves the page.
    dot.wait_for(state="detached", timeout=10_000)
    # At most 30 dots are shown, and the feed keeps its newest 50 items.
    page.evaluate("""() => {
        const add = (id, n, cls) => {
            const box = document.getElementById(id);
            box.replaceChildren();  // other tests' runs may still have dots here
            for (let i = 0; i < n; i++) box.insertAdjacentHTML('beforeend', `<li class="${cls}">${i}</li>`);
        };
        add('diagram-dots', 32, 'dot dot--broker');
        add('event-feed', 60, 'feed__item');
        document.body.dispatchEvent(new CustomEvent('htmx:wsAfterMessage', {bubbles: true}));
    }""")
    assert page.locator("#diagram-dots .dot:visible").count() == 30
    assert page.locator("[data-testid=diagram-more]").inner_text() == "+2 more"
    assert page.locator("#event-feed > li").count() == 50
    page.evaluate("document.getElementById('diagram-dots').replaceChildren()")
    page.get_by_role("button", name="Explain").click()
    tasks.test_task.delay("dot at 390", 1.0)
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#diagram-dots .dot--worker").wait_for(timeout=10_000)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator("[data-testid=diagram]").screenshot(path=str(artifacts_dir / "diagram-390.png"))
    page.locator("[data-testid=event-feed]").screenshot(path=str(artifacts_dir / "explain-feed-390.png"))
    page.context.close()
