"""Launching and re-running in Chromium, on the real stack: the kind's own fields swapped in,
a task whose form is its signature launched, re-run as it was (a notice links the new run)
and with changes (its form, prefilled, opens the new run)."""

import pytest

from tests.browser import card, open_page, wait_live, wait_state

pytestmark = pytest.mark.browser


def field_labels(page) -> list[str]:
    return page.locator("#launch-form .fields label").all_inner_texts()


def test_the_form_follows_the_kind_and_launches_a_signature_form_task(browser, stack, artifacts_dir):
    page = open_page(browser, stack.url)
    assert field_labels(page) == ["Message", "Iterations", "Delay (s)", "Fail at #"]
    page.get_by_label("Message", exact=True).fill("Carried over")
    page.get_by_label("Task", exact=True).select_option("test")
    page.wait_for_function("document.querySelectorAll('#launch-form .fields label').length === 2")
    assert field_labels(page) == ["Message", "Delay (s)"]
    assert page.get_by_label("Message", exact=True).input_value() == "Carried over"  # a field both kinds have
    assert (
        page.get_by_label("Delay (s)", exact=True).get_attribute("placeholder") == "2"
    )  # test_task's own default
    page.get_by_label("Task", exact=True).select_option("add")
    page.wait_for_function("document.querySelector('#launch-form [name=x]') !== null")
    assert field_labels(page) == ["X", "Y"]
    assert page.get_by_label("Y", exact=True).input_value() == "2"  # the signature's default
    page.get_by_role("button", name="Run task").click()  # x left empty
    page.locator("#launch-form .field__error", has_text="This field is required.").wait_for(timeout=10_000)
    page.get_by_label("X", exact=True).fill("40")
    page.get_by_label("Y", exact=True).fill("")  # empty: the task's default
    page.get_by_role("button", name="Run task").click()
    link = page.locator("#launch-form .sent a")
    link.wait_for(timeout=10_000)
    task_id = link.get_attribute("href").strip("/").split("/")[-1]
    wait_state(page, task_id, "Succeeded", timeout=20_000)
    assert card(page, task_id).locator("[data-testid=result]").inner_text() == "42"
    assert (
        page.get_by_label("Task", exact=True).input_value() == "add"
    )  # the next launch starts from this one
    page.screenshot(path=str(artifacts_dir / "launch-signature-form.png"))

    # Re-run as it was, from the card: a notice links the new run.
    known = set(page.locator(".run").evaluate_all("els => els.map(e => e.dataset.taskId)"))
    card(page, task_id).get_by_role("button", name="Re-run", exact=True).click()
    notice = page.get_by_test_id("rerun-started")
    notice.wait_for(timeout=10_000)
    again = notice.locator("a").get_attribute("href").strip("/").split("/")[-1]
    assert again not in known
    wait_state(page, again, "Succeeded", timeout=20_000)
    assert notice.inner_text().startswith("Re-run started:")

    # Re-run with changes, from the new run's page: the form starts from its arguments.
    notice.locator("a").click()
    page.wait_for_url(f"{stack.url}/tasks/{again}/")
    wait_live(page)
    card(page, again).get_by_role("link", name="Re-run with changes").click()
    page.wait_for_url(f"{stack.url}/tasks/{again}/rerun")
    assert page.get_by_label("X", exact=True).input_value() == "40"
    page.get_by_label("Y", exact=True).fill("3")
    page.screenshot(path=str(artifacts_dir / "rerun-with-changes.png"))
    page.get_by_role("button", name="Re-run with these arguments").click()
    page.wait_for_url(lambda url: "/tasks/" in url and again not in url and not url.endswith("/rerun"))
    changed = page.url.strip("/").split("/")[-1]
    wait_state(page, changed, "Succeeded", timeout=20_000)
    assert card(page, changed).locator("[data-testid=result]").inner_text() == "43"
    assert page.get_by_text("Re-run of").locator("a").get_attribute("href") == f"/tasks/{again}/"
    assert stack.api(f"/api/tasks/{changed}/")["kwargs"] == {"x": 40, "y": 3}
    assert page.dialogs == []
    page.context.close()
