"""The pages' layout at a desktop width (1280 px) and a phone's (390 px), in a real Chromium,
with a screenshot of each state under the test's tmp dir: nothing overlaps on `/` or a job's
page, no empty review card, Cancel beside (not over) the counts, a job waiting for a worker
says so, errors in the error style keeping what was typed, the allowed roots on the form,
actions that cannot work disabled with the reason, and a job page that updates when its job
ends (some images failed: said, in its own colour)."""

import pytest

from tests.helpers.browser import log_in
from tests.helpers.images import write_images

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]
WIDTHS = {"desktop": 1280, "phone": 390}


def overlap(first: dict | None, second: dict | None) -> bool:
    if first is None or second is None:
        return False
    return not (first["x"] + first["width"] <= second["x"]
                or second["x"] + second["width"] <= first["x"]
                or first["y"] + first["height"] <= second["y"]
                or second["y"] + second["height"] <= first["y"])


def boxes(page, selectors: list[str]) -> list[dict | None]:
    return [page.locator(selector).first.bounding_box() for selector in selectors]


def assert_apart(page, selectors: list[str]) -> None:
    found = boxes(page, selectors)
    for index, first in enumerate(found):
        assert first is not None, selectors[index]
        for other, second in zip(selectors[index + 1:], found[index + 1:]):
            assert not overlap(first, second), (selectors[index], other, first, second)


def shoot(page, tmp_path, name: str) -> None:
    """A screenshot of the whole page; the page itself never scrolls sideways (a wide table
    scrolls in its own box)."""
    width = page.viewport_size["width"]
    wider = page.evaluate("[...document.querySelectorAll('main *')].filter(node => "
                          "node.scrollWidth > node.clientWidth + 1 && "
                          "!node.matches('.table-scroll')).map(node => node.tagName + '.' + "
                          "node.className)")
    assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, wider)
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000


def test_pages_at_desktop_and_phone_widths(live_server, browser_page, isolated_env, tmp_path,
                                           start_worker):
    page = browser_page
    folder = isolated_env / "incoming"
    write_images(folder, 5)
    (folder / "broken.jpg").write_text("not a jpeg")  # one image fails
    (folder / "notes.txt").write_text("not an image")  # one non-image file is skipped
    log_in(page, live_server)

    page.goto(live_server + "/")
    assert str(isolated_env) in page.inner_text("#allowed-roots")  # where a source may lie
    page.fill("#submit-form input[name=source]", "/etc")
    page.fill("#submit-form input[name=batch_size]", "2")
    page.click("#submit-form button")
    error = page.locator("#submit-error")
    assert "allowed root" in error.inner_text()
    assert error.evaluate("node => getComputedStyle(node).color") == "rgb(176, 0, 32)"
    assert page.input_value("#submit-form input[name=source]") == "/etc"  # kept as typed
    assert page.input_value("#submit-form input[name=batch_size]") == "2"
    for name, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        shoot(page, tmp_path, f"refused-{name}")

    page.fill("#submit-form input[name=source]", str(folder))
    page.click("#submit-form button")  # no worker yet: the job waits, and says so
    page.wait_for_url("**/jobs/*")
    job_id = int(page.url.rsplit("/", 1)[-1])
    assert "waiting for a worker" in page.inner_text(".flash-warning")
    assert "waiting for a worker" in page.inner_text(".progress .waiting")
    assert "1 non-image file skipped" in page.inner_text("table.summary")
    assert not page.locator("#review-card").is_visible()  # no empty card before "Review next"
    for name, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        assert_apart(page, [".progress .track", ".progress .progress-counts",
                            ".progress .status", "#cancel-form button"])
        assert_apart(page, [".progress .progress-counts", ".progress .waiting"])
        shoot(page, tmp_path, f"job-waiting-{name}")

    for name, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(live_server + "/")
        row = f"table.jobs tr:has(a[href='/jobs/{job_id}'])"
        assert_apart(page, [f"{row} .progress .track", f"{row} .progress .progress-counts",
                            f"{row} .progress .status", f"{row} td:last-child"])
        shoot(page, tmp_path, f"jobs-{name}")

    page.goto(f"{live_server}/jobs/{job_id}")
    start_worker("layout").wait_ready()
    # The page reloads itself once the job has ended and its report is written.
    page.wait_for_selector(".plots img", timeout=300_000)
    assert "Summary plots appear" not in page.inner_text("main")
    status = page.locator(".progress .status")
    assert status.inner_text() == "done, 1 failed"
    assert status.evaluate("node => getComputedStyle(node).color") == "rgb(138, 90, 0)"
    assert not page.locator(".progress .waiting").is_visible()
    for name, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        shoot(page, tmp_path, f"job-done-{name}")


def test_actions_that_cannot_work_are_disabled_with_the_reason(live_server, browser_page,
                                                               tmp_path):
    page = browser_page
    log_in(page, live_server)
    page.goto(live_server + "/models")
    retrain = page.locator("#retrain-form button")
    assert retrain.is_disabled()
    assert "HAPPYSAD_TRAIN_DATA is not set" in page.inner_text("#retrain-blocked")
    rollback = page.locator("#rollback-form button")
    assert rollback.is_disabled()  # one version: nothing to roll back to
    assert "nothing to roll back to" in page.inner_text("#rollback-blocked")
    for name, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        shoot(page, tmp_path, f"models-{name}")
