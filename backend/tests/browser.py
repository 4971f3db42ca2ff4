"""Driving the page in Chromium: open it, launch from its form, find a run's card."""


def open_page(browser, url, path="/"):
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
    frames = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(payload)))
    page.goto(url + path)
    try:
        page.wait_for_selector("#connection.conn--live", timeout=10_000)
    except Exception as exc:  # say what the page was doing, not just that it timed out
        state = page.evaluate(
            "[document.getElementById('connection').className,"
            " document.getElementById('live-status')?.dataset.state,"
            " document.getElementById('live-cursor')?.dataset.lastId]"
        )
        sizes = [len(f) for f in frames]
        raise AssertionError(
            f"page never went live: connection/status/cursor {state}; {len(frames)} frames "
            f"received ({sum(sizes)} bytes); first: {str(frames[:1])[:300]}"
        ) from exc
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
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
