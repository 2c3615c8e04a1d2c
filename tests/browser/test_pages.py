"""The pages in a real Chromium against a real server and worker on Redis + PostgreSQL: submit
a folder from the page and watch its bar reach 100%, filter to the uncertain images, promote
and roll back a model, cancel a job; a hostile file name stays text."""

import os
import shutil
import time

import pytest

from db import queries
from db.session import session_scope
from tests.helpers.browser import log_in, wait_for_true
from trainer.sample_data import write_sample_dataset

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]
# File names that would run script if a page put them in its markup unescaped (a "/" cannot be
# in a file name, so the script element stays unclosed: it would swallow the page).
HOSTILE_NAMES = ["<img src=x onerror=alert(1)>.jpg", "<script>alert(2)<script>.jpg"]


def bar_value(page) -> float:
    return float(page.get_attribute(".progress .bar", "aria-valuenow"))


def test_submit_watch_the_bar_filter_uncertain(live_server, browser_page, isolated_env,
                                               start_worker, tmp_path):
    page = browser_page
    folder = isolated_env / "incoming"
    # ~100 batches of two: seconds of work even on an idle machine, so the page's once-a-second
    # poll sees the bar between 0 and 100.
    write_sample_dataset(folder, per_class=100, image_size=48, seed=11, labelled=False)
    first = sorted(folder.glob("*.jpg"))[0]
    for name in HOSTILE_NAMES:
        shutil.copy(first, folder / name)
    (folder / "broken.jpg").write_text("not a jpeg")
    log_in(page, live_server)

    page.goto(live_server + "/")
    page.fill("#submit-form input[name=source]", str(folder))
    page.fill("#submit-form input[name=batch_size]", "2")
    page.click("#submit-form button")
    page.wait_for_url("**/jobs/*")
    job_id = int(page.url.rsplit("/", 1)[-1])
    assert bar_value(page) == 0  # queued, no worker yet

    worker = start_worker("browser")
    worker.wait_ready()
    seen, deadline = [], time.monotonic() + 300
    while time.monotonic() < deadline:  # the page's script moves the bar: no reload
        seen.append(bar_value(page))
        if seen[-1] == 100:
            break
        time.sleep(0.2)
    assert seen[-1] == 100 and seen == sorted(seen), seen
    assert any(0 < value < 100 for value in seen), seen  # it moved while the worker ran
    page.wait_for_selector(".progress .status-done-with-failures")  # broken.jpg failed

    # The report (summary plots) follows "done"; the page reloads itself once it is written.
    # (A reload from here too would race that one: Page.reload: net::ERR_ABORTED.)
    page.wait_for_selector(".plots img", timeout=120_000)
    wait_for_true(page, "[...document.querySelectorAll('.plots img')]"
                           ".every(image => image.complete && image.naturalWidth > 0)")
    assert "broken.jpg" in page.inner_text("table.failed")

    page.select_option("#filter-form select[name=sort]", "uncertain")
    page.click("#filter-form button")
    page.wait_for_url("**sort=uncertain**")
    shown = [float(tile.get_attribute("data-confidence"))
             for tile in page.query_selector_all(".grid .tile")]
    with session_scope() as session:
        every = sorted(p.confidence for p in queries.iter_predictions(session, job_id)
                       if p.confidence is not None)
    assert shown == every[:len(shown)] and len(shown) == 60
    wait_for_true(page, "[...document.querySelectorAll('.grid img')].slice(0, 12)"
                           ".every(image => image.complete && image.naturalWidth > 0)")

    names = page.eval_on_selector_all(".grid .name", "nodes => nodes.map(n => n.textContent)")
    page.goto(f"{live_server}/jobs/{job_id}?label=&min_confidence=&max_confidence=&sort=id")
    names += page.eval_on_selector_all(".grid .name", "nodes => nodes.map(n => n.textContent)")
    while page.query_selector("a.next"):
        page.click("a.next")
        names += page.eval_on_selector_all(".grid .name", "nodes => nodes.map(n => n.textContent)")
    assert set(HOSTILE_NAMES) <= set(names)  # shown as the text they are
    assert page.dialogs == []  # and never run

    page.goto(f"{live_server}/jobs/{job_id}?sort=uncertain")
    wait_for_true(page, "[...document.querySelectorAll('.grid img')].slice(0, 12)"
                           ".every(image => image.complete && image.naturalWidth > 0)")
    screenshot = tmp_path / "web-job-page.jpg"
    # The top of the page down to the grid's first rows: summary, plots, review, thumbnails.
    page.screenshot(path=str(screenshot), type="jpeg", quality=60, full_page=True,
                    clip={"x": 0, "y": 0, "width": 1280, "height": 1800})
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("HAPPYSAD_TEST_SCREENSHOT_TO"):  # how docs/web-job-page.jpg is made
        shutil.copy(screenshot, os.environ["HAPPYSAD_TEST_SCREENSHOT_TO"])


def test_cancel_a_job_from_its_page(live_server, browser_page, isolated_env):
    page = browser_page
    folder = isolated_env / "incoming"
    write_sample_dataset(folder, per_class=5, image_size=32, seed=12, labelled=False)
    log_in(page, live_server)
    page.goto(live_server + "/")
    page.fill("#submit-form input[name=source]", str(folder))
    page.fill("#submit-form input[name=batch_size]", "1")
    page.click("#submit-form button")  # no worker runs: the job waits, running
    page.wait_for_url("**/jobs/*")
    job_id = int(page.url.rsplit("/", 1)[-1])
    page.click("#cancel-form button")
    page.wait_for_selector(f"text=job {job_id} cancelled")
    assert page.inner_text(".progress .status") == "cancelled"
    assert not page.query_selector("#cancel-form")
    with session_scope() as session:
        job = queries.get_job(session, job_id)
        assert (job.status, job.cancelled_by) == ("cancelled", "web")


def test_promote_and_roll_back_from_the_models_page(live_server, browser_page,
                                                    tiny_baseline_training, registered_model):
    from db.settings import get_settings
    from trainer.registry import register

    page = browser_page
    challenger = register(tiny_baseline_training, promote="never", settings=get_settings(),
                          sessions=session_scope).version
    log_in(page, live_server)
    page.goto(live_server + "/models")
    assert "production" in page.get_attribute(f"#model-{registered_model}", "class")
    wait_for_true(page, "[...document.querySelectorAll('.plots img')]"
                           ".every(image => image.complete && image.naturalWidth > 0)")
    page.click(f"#model-{challenger} button")
    page.wait_for_selector(f"text=model v{challenger} is production")
    assert "production" in page.get_attribute(f"#model-{challenger}", "class")
    page.click(f"#model-{registered_model} button:has-text('Roll back to')")
    page.wait_for_selector(f"text=model v{registered_model} is production")
    with session_scope() as session:
        assert queries.production_model_version(session).version == registered_model
        assert [p.kind for p in queries.promotion_history(session)][-2:] == ["manual", "rollback"]
    assert "rollback" in page.inner_text("table.history")
