"""Driving the page in Chromium: open it (or log in to it), launch from its form, find a run's card."""


def new_page(browser):
    """A page in a context of its own (its own cookies): alerts recorded, confirmations accepted."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.dialogs = []  # alerts (an XSS would raise one); confirmations are accepted

    def on_dialog(dialog):
        if dialog.type == "confirm":
            dialog.accept()
        else:
            page.dialogs.append(dialog.message)
            dialog.dismiss()

    page.on("dialog", on_dialog)
    page.ws_frames = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: page.ws_frames.append(payload)))
    return page


def wait_live(page):
    """Wait until the page's socket is live; then mark the document (a reload unmarks it)."""
    try:
        page.wait_for_selector("#connection.conn--live", timeout=10_000)
    except Exception as exc:  # say what the page was doing, not just that it timed out
        state = page.evaluate(
            "[document.getElementById('connection')?.className,"
            " document.getElementById('live-status')?.dataset.state,"
            " document.getElementById('live-cursor')?.dataset.lastId]"
        )
        frames = page.ws_frames
        sizes = [len(f) for f in frames]
        raise AssertionError(
            f"page never went live: connection/status/cursor {state}; {len(frames)} frames "
            f"received ({sum(sizes)} bytes); first: {str(frames[:1])[:300]}"
        ) from exc
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page


def open_page(browser, url, path="/"):
    page = new_page(browser)
    page.goto(url + path)
    wait_live(page)
    return page


def log_in(browser, url, username, password, path="/"):
    """A page of a new context that asks for `path`, logs in on the login page it is sent
    to, and comes back to `path`, live."""
    page = new_page(browser)
    page.goto(url + path)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(url + path)
    wait_live(page)
    return page


def launch(page, message, count, delay="0.3", fail_at=""):
    page.get_by_label("Message").fill(message)
    page.get_by_label("Iterations").fill(str(count))
    page.get_by_label("Delay (s)").fill(delay)
    page.get_by_label("Fail at #").fill(str(fail_at))
    link = page.locator("#launch-form .sent a")
    previous = link.get_attribute("href") if link.count() else None
    page.get_by_role("button", name="Run task").click()
    # The form is swapped when the server answers; until then the last launch's link stays.
    page.wait_for_function(
        "prev => { const a = document.querySelector('#launch-form .sent a');"
        " return a && a.getAttribute('href') !== prev; }",
        arg=previous,
        timeout=10_000,
    )
    return link.get_attribute("href").strip("/").split("/")[-1]


def card(page, task_id):
    return page.locator(f"#run-{task_id}")


def wait_state(page, task_id, label, timeout=30_000):
    page.locator(f"#run-{task_id} [data-testid=state]", has_text=label).wait_for(timeout=timeout)
