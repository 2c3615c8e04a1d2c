"""Each step of a job's life, in this process: SQLite, the embedded queue (its messages read
back from the queue folder and run here), no worker process. The integration tests prove the
same steps through real workers, Redis and PostgreSQL, and under faults; these say quickly
which step broke."""

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from db import queries
from db.locks import RECONCILE_LOCK
from db.session import session_scope, try_lock
from db.settings import get_settings
from db.tables import JobBatch, utc_now
from scheduler import reconcile
from scheduler.celery_app import sender_app
from scheduler.listing import iter_batches
from scheduler.outbox import send_batches
from scheduler.resume import resume_job, retry_failed
from tests.helpers.images import encode, solid_rgb, write_images
from tests.helpers.jobs import job_rows, submit
from tests.helpers.records import make_job
from trainer.storage import open_storage
from worker import classify, tasks
from worker.task_names import CLASSIFY_BATCH_TASK, FINISH_JOB_TASK, LABELLING_QUEUE


def queued_tasks(app) -> list[tuple[str, list]]:
    """Take every message out of the labelling queue: (task name, args), in sending order."""
    taken = []
    with app.connection_for_read() as connection:
        queue = connection.SimpleQueue(LABELLING_QUEUE)
        while True:
            try:
                message = queue.get(block=False)
            except queue.Empty:
                break
            taken.append((message.headers["task"], message.payload[0]))
            message.ack()
        queue.close()
    return taken


def run_in_process(messages: list[tuple[str, list]]) -> None:
    """What a worker would do with the messages, here: the tasks' own code, called."""
    for task, args in messages:
        {CLASSIFY_BATCH_TASK: tasks.classify_batch, FINISH_JOB_TASK: tasks.finish_job}[task](*args)


def outbox_rows(job_id: int) -> dict[int, JobBatch]:
    with session_scope() as session:
        return {row.batch_index: row for row in session.scalars(
            select(JobBatch).where(JobBatch.job_id == job_id))}


def job(job_id: int):
    with session_scope() as session:
        return queries.get_job(session, job_id)


@pytest.fixture
def app(monkeypatch):
    # This process's models, as a worker process keeps them, are this test's own: another
    # test's version 1 may be another model.
    monkeypatch.setattr(tasks, "_model_cache", None)
    return sender_app()  # no HAPPYSAD_BROKER_URL: the queue is a folder under HAPPYSAD_HOME


@pytest.fixture
def photos(tmp_path) -> tuple[str, list[str]]:
    """Five images, a file that is not one, and a .jpg that does not decode; (folder, the
    URIs of the candidate images, in the order the folder lists them)."""
    folder = tmp_path / "photos"
    uris = write_images(folder, 5)
    (folder / "notes.txt").write_text("not a photo")
    (folder / "zz_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    listed = sum(iter_batches(open_storage(str(folder)), 100, [0]), [])
    assert sorted(listed) == sorted(uris + [str((folder / "zz_broken.jpg").resolve())])
    return str(folder), listed


def test_listing_streams_batches_and_skips_what_is_not_an_image(photos):
    folder, uris = photos
    skipped = [0]
    batches = list(iter_batches(open_storage(folder), 4, skipped))
    assert batches == [uris[:4], uris[4:]] and skipped == [1]
    again = list(iter_batches(open_storage(folder), 4, [0], exclude=set(uris[1:5])))
    assert again == [[uris[0], uris[5]]]  # a resumed listing leaves out what is recorded


def test_submit_records_each_batch_before_sending_it(app, photos, registered_baseline_model):
    folder, uris = photos
    submission = submit(folder, batch_size=4)
    assert (submission.total_images, submission.batches, submission.skipped_files) == (6, 2, 1)
    recorded = outbox_rows(submission.job_id)
    assert [row.uris for row in recorded.values()] == [uris[:4], uris[4:]]
    assert all(row.sent_at and row.sends == 1 and row.finished_at is None
               for row in recorded.values())
    assert queued_tasks(app) == [(CLASSIFY_BATCH_TASK, [submission.job_id, 0, uris[:4]]),
                                 (CLASSIFY_BATCH_TASK, [submission.job_id, 1, uris[4:]])]
    assert job(submission.job_id).status == "running"  # sealed: its size is known


def test_classifying_every_batch_finishes_the_job_with_its_report(app, photos,
                                                                  registered_baseline_model):
    folder, uris = photos
    job_id = submit(folder, batch_size=4).job_id
    run_in_process(queued_tasks(app))
    rows = job_rows(job_id)
    assert sorted(rows) == sorted(uris)
    broken = [uri for uri in uris if uri.endswith("zz_broken.jpg")]
    assert all(rows[uri].error and rows[uri].label is None for uri in broken)  # with why
    assert all(rows[uri].label in {"happy", "sad"} and rows[uri].model_version
               == registered_baseline_model for uri in set(uris) - set(broken))
    finished = job(job_id)
    assert finished.status == "done" and finished.report_path.endswith("report.html")
    assert all(row.finished_at for row in outbox_rows(job_id).values())


def test_a_batch_written_twice_has_its_rows_once(app, photos, registered_baseline_model):
    folder, uris = photos
    job_id = submit(folder, batch_size=4).job_id
    messages = queued_tasks(app)
    run_in_process(messages[:1] * 2)  # a redelivery of the first batch
    assert sorted(job_rows(job_id)) == sorted(uris[:4])
    assert job(job_id).status == "running"


def test_finishing_a_job_happens_once(photos, registered_baseline_model):
    folder, uris = photos
    job_id = submit(folder, batch_size=4).job_id
    cache = classify.ModelCache(get_settings())
    assert classify.classify_batch(job_id, 0, uris[:4], cache, session_scope, "test") is False
    # the last batch
    assert classify.classify_batch(job_id, 1, uris[4:], cache, session_scope, "test") is True
    assert job(job_id).status == "running"  # finishing is the task's: complete_job
    tasks.complete_job(job_id)
    done = job(job_id)
    assert done.status == "done" and done.report_path
    tasks.complete_job(job_id)  # a second finish (a redelivery): nothing changes
    assert job(job_id).finished_at == done.finished_at


def reconcile_pass(app) -> dict:
    """One pass, as a worker's reconciler makes it: with the settings in force now."""
    return reconcile.reconcile_once(app, get_settings(), session_scope)


def test_a_reconciler_pass_sends_lost_batches_again_and_finishes_complete_jobs(
        app, photos, registered_baseline_model, monkeypatch):
    folder, uris = photos
    job_id = submit(folder, batch_size=4).job_id
    queued_tasks(app)  # both messages lost
    assert reconcile_pass(app)["resent"] == 0  # not yet: they may be in flight
    later = utc_now() + timedelta(hours=1)  # past HAPPYSAD_RESEND_AFTER, without waiting for it
    monkeypatch.setattr(reconcile, "utc_now", lambda: later)
    with try_lock(RECONCILE_LOCK):  # another process's pass is going on: this one does nothing
        assert reconcile_pass(app)["resent"] == 0
    assert reconcile_pass(app)["resent"] == 2
    assert [row.sends for row in outbox_rows(job_id).values()] == [2, 2]
    resent = queued_tasks(app)
    assert resent == [(CLASSIFY_BATCH_TASK, [job_id, 0, uris[:4]]),
                      (CLASSIFY_BATCH_TASK, [job_id, 1, uris[4:]])]
    # written, but the job left unfinished (its worker died)
    cache = classify.ModelCache(get_settings())
    for _, (_, batch_index, batch) in resent:
        classify.classify_batch(job_id, batch_index, batch, cache, session_scope, "test")
    done = reconcile_pass(app)
    assert done["finished"] == [job_id] and done["resent"] == 0
    run_in_process(queued_tasks(app))  # the finish_job message
    assert job(job_id).status == "done"


def test_resume_lists_again_only_what_is_not_recorded(app, photos, registered_baseline_model):
    folder, uris = photos
    storage = open_storage(folder)
    with session_scope() as session:  # a submitter that died after its first batch
        job_id = queries.create_job(session, storage.root, registered_baseline_model, 4).id
    send_batches(app, session_scope, job_id, [uris[:4]], 0)
    assert queued_tasks(app) == [(CLASSIFY_BATCH_TASK, [job_id, 0, uris[:4]])]
    resumed = resume_job(app, session_scope, job_id, "resumed by the test")
    assert (resumed.listed_again, resumed.already_recorded, resumed.new_images,
            resumed.new_batches, resumed.total_images) == (True, 4, 2, 1, 6)
    assert queued_tasks(app) == [(CLASSIFY_BATCH_TASK, [job_id, 1, uris[4:]])]
    assert job(job_id).status_reason == "resumed by the test"
    assert sum((row.uris for row in outbox_rows(job_id).values()), []) == uris


def test_retry_sends_a_done_jobs_failed_images_again(app, photos, registered_baseline_model):
    folder, uris = photos
    job_id = submit(folder, batch_size=4).job_id
    run_in_process(queued_tasks(app))
    assert queries_counts(job_id) == (5, 1)
    broken = next(uri for uri in uris if uri.endswith("zz_broken.jpg"))
    Path(broken).write_bytes(encode(solid_rgb(40, 40), ".jpg"))  # the file was mended
    retried = retry_failed(app, session_scope, job_id)
    assert (retried.images, retried.batches) == (1, 1)
    assert job(job_id).status == "running"
    assert queued_tasks(app) == [(CLASSIFY_BATCH_TASK, [job_id, 2, [broken]])]
    run_in_process([(CLASSIFY_BATCH_TASK, [job_id, 2, [broken]])])
    assert job(job_id).status == "done" and queries_counts(job_id) == (6, 0)


def queries_counts(job_id: int) -> tuple[int, int]:
    with session_scope() as session:
        counts = queries.job_counts(session, job_id)
    return counts["classified"], counts["failed"]


def test_the_report_holds_the_jobs_figures_and_plots(tmp_path, isolated_env):
    folder = tmp_path / "photos"
    write_images(folder, 2)
    job_id, _ = make_job(["happy", "sad"], [("img_000.jpg", {"happy": 0.8, "sad": 0.2}),
                                            ("img_001.jpg", {"happy": 0.3, "sad": 0.7}),
                                            ("gone.jpg", None)], source=str(folder))
    from worker.report import build_report

    path = build_report(job_id, settings=get_settings(), sessions=session_scope)
    report_folder = isolated_env / "jobs" / str(job_id)
    assert path.endswith("report.html")
    assert sorted(file.name for file in report_folder.iterdir()) == [
        "contact_sheet.png", "labels.png", "probabilities.png", "report.html"]
    page = (report_folder / "report.html").read_text()
    for figure in ("classified", "failed", "label happy", "label sad"):
        assert figure in page
    assert all((report_folder / name).read_bytes().startswith(b"\x89PNG")
               for name in ("contact_sheet.png", "labels.png", "probabilities.png"))
