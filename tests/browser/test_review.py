"""Review in a real Chromium against a real server and real workers on Redis + PostgreSQL:
confirm and correct images on a job's page by keyboard and by click, "review next" served by
the review queue, the next image following by itself; then a forced retrain on a real
training worker trains on exactly those reviewed images. On the tiny baseline model: the page
and the path of the verdicts are the subject here; the default architecture's training on
reviewed images is tests/unit/trainer/test_corrections.py's and test_retrain's."""

import time

import pytest

from db import queries

from db.queries import reviews
from db.session import session_scope
from db.settings import reset_settings
from db.tables import RetrainRun
from tests.helpers.browser import log_in, wait_for_true
from trainer.corrections import read_corrections, training_fingerprint
from trainer.dataset import source_fingerprint
from trainer.sample_data import write_sample_dataset
from worker.task_names import TRAINING_QUEUE

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]


def shown_prediction(page, previous: int | None = None) -> int:
    """The id of the image the review card shows, once it is another than `previous`."""
    wait_for_true(
        page, "previous => { const card = document.getElementById('review-card');"
        " return !card.hidden && card.dataset.prediction"
        " && card.dataset.prediction !== String(previous); }", arg=previous)
    return int(page.get_attribute("#review-card", "data-prediction"))


def queue_ids(job_id: int, limit: int = 5) -> list[int]:
    with session_scope() as session:
        return [p.id for p in reviews.review_queue(session, job_id, limit)]


def wait_for_reviews(count: int, timeout: float = 60) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope() as session:
            current = {r.prediction_id: r.reviewed_label for r in reviews.list_reviews(session)}
        if len(current) >= count:
            return current
        time.sleep(0.2)
    raise AssertionError(f"{count} reviews not recorded within {timeout}s: {current}")


@pytest.fixture
def train_data(sample_folder, monkeypatch):
    """HAPPYSAD_TRAIN_DATA for the server too (its "Retrain now" is disabled without it): the
    model's own data. Asked for before live_server, so the server starts with it."""
    monkeypatch.setenv("HAPPYSAD_TRAIN_DATA", str(sample_folder))


def test_review_on_the_page_and_the_retrain_trains_on_it(
        train_data, live_server, browser_page, isolated_env, start_worker, sample_folder,
        monkeypatch, registered_baseline_model):
    page = browser_page
    folder = isolated_env / "incoming"
    write_sample_dataset(folder, per_class=8, image_size=48, seed=21, labelled=False)
    from tests.helpers.jobs import submit

    job_id = submit(str(folder), None, 4).job_id
    labeller = start_worker("labeller")
    labeller.wait_ready()
    deadline = time.monotonic() + 300
    while not queries_job_done(job_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert queries_job_done(job_id)

    log_in(page, live_server)
    page.goto(f"{live_server}/jobs/{job_id}")
    labels = page.eval_on_selector_all("button.review-label",
                                       "nodes => nodes.map(n => [n.dataset.key, n.dataset.label])")
    assert labels == [["1", "happy"], ["2", "sad"]]  # one key per class, shown on the page
    expected = queue_ids(job_id)
    page.click("#review-next")
    first = shown_prediction(page)
    assert first == expected[0]  # the queue's first: the least sure image
    page.keyboard.press("2")  # sad, by keyboard; the next image follows by itself
    second = shown_prediction(page, first)
    assert wait_for_reviews(1) == {first: "sad"}
    assert second == queue_ids(job_id)[0]
    page.keyboard.press("1")
    third = shown_prediction(page, second)
    page.keyboard.press("s")  # skipped: not reviewed, the queue moves on
    fourth = shown_prediction(page, third)
    page.click("button.review-label[data-label=sad]")  # by click
    wait_for_reviews(3)

    tile = page.query_selector(f'.tile:not([data-prediction="{first}"])'
                               f':not([data-prediction="{second}"])'
                               f':not([data-prediction="{third}"])'
                               f':not([data-prediction="{fourth}"]) img')
    tile.click()  # any image of the grid, then the grid's next ones
    picked = shown_prediction(page, fourth)
    page.keyboard.press("1")
    shown_prediction(page, picked)
    recorded = wait_for_reviews(4)
    assert recorded == {first: "sad", second: "happy", fourth: "sad", picked: "happy"}
    assert third not in recorded
    wait_for_true(page, "document.getElementById('review-reviewed').textContent === '4'")
    page.reload()
    assert page.inner_text(f'.tile[data-prediction="{first}"] .reviewed') == "reviewed: sad"
    with session_scope() as session:
        rows = reviews.list_reviews(session, job_id)
        assert {r.reviewer for r in rows} == {"web"}
        model_labels = {p.id: p.label for p in queries.iter_predictions(session, job_id)}
        assert all(r.model_label == model_labels[r.prediction_id] for r in rows)
        reviewed = reviews.reviewed_images(session)
        page_verdicts = {uri: recorded[prediction_id] for prediction_id, uri
                         in reviews.prediction_uris(session, recorded).items()}
    # What the retrain reads is exactly the page's verdicts: these images, these labels.
    assert {item.uri: item.label for item in reviewed} == page_verdicts

    reset_settings()  # the worker started below trains on HAPPYSAD_TRAIN_DATA (train_data)
    trainer = start_worker("trainer", queues=TRAINING_QUEUE)
    trainer.wait_ready()
    page.goto(f"{live_server}/models")
    page.check("input[name=force]")
    page.click("button:has-text('Retrain now')")
    page.wait_for_selector("text=queued on the training queue")
    deadline = time.monotonic() + 300
    run = None
    while time.monotonic() < deadline:
        with session_scope() as session:
            run = session.query(RetrainRun).filter(RetrainRun.status != "running").first()
            if run is not None:
                break
        time.sleep(1)
    assert run is not None and run.status == "done", run and run.reason
    corrections, unreadable = read_corrections(reviewed)
    assert not unreadable and len(corrections) == 4
    assert run.dataset_fingerprint == training_fingerprint(
        source_fingerprint(str(sample_folder)), corrections)
    assert run.dataset_fingerprint != source_fingerprint(str(sample_folder))
    with session_scope() as session:
        version = queries.get_model_version(session, run.model_version)
        assert version.params["reviewed_images"] == 4
    page.reload()
    assert f"v{run.model_version}" in page.inner_text("table.runs")


def queries_job_done(job_id: int) -> bool:
    """Done and its report written: the job page is settled, its script never reloads it."""
    with session_scope() as session:
        job = queries.get_job(session, job_id)
        return job.status == "done" and bool(job.report_path)
