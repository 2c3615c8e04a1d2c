"""`happysad submit` and `happysad jobs`: batch-labelling jobs, made, followed and listed."""

import time
from typing import Annotated

import typer

from db.tables import JOB_CANCELLED, JOB_DONE, JOB_FAILED
from happysad import output
from happysad.output import JsonListOption, JsonOption
from worker.task_names import LABELLING_QUEUE

jobs_app = typer.Typer(help="Batch-labelling jobs: `happysad jobs` lists, `jobs show JOB` details.",
                       invoke_without_command=True)


def _job_record(job_id: int) -> dict:
    from db.session import session_scope
    from happysad.records import counted_job_record

    with session_scope() as session:
        return counted_job_record(session, job_id, output.program())


def submit_command(
    source: Annotated[str, typer.Argument(help="Folder, file:// or s3://bucket/prefix of images.")],
    model: Annotated[int | None, typer.Option(help="Model version (default: production).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per task (default: HAPPYSAD_BATCH_SIZE).")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the job (starting local workers on the embedded queue), with progress on stderr, then a summary.")] = False,
    timeout: Annotated[float | None, typer.Option(help="With --wait: give up waiting after this many seconds (the job goes on).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Submit a folder or bucket of images for labelling; prints the job id."""
    from db.session import session_scope
    from db.settings import get_settings
    from happysad.local_workers import local_workers_for
    from scheduler.submit import submit_source

    submission = submit_source(source, model, batch_size, settings=get_settings(),
                               sessions=session_scope)
    if not wait:
        record = _job_record(submission.job_id)
        if json_output:
            output.print_json(record)
        else:
            output.say(f"job {submission.job_id}: {submission.total_images} images in "
                       f"{submission.batches} batches queued for model v{submission.model_version}"
                       + (f" ({submission.skipped_files} non-image "
                          f"file{'s' if submission.skipped_files != 1 else ''} skipped)"
                          if submission.skipped_files else ""))
            if record["waiting_for_worker"]:
                output.say(f"job {submission.job_id} is {record['waiting_for_worker']}, or "
                           "submit with --wait, which starts local workers", to_stderr=True)
        return
    with local_workers_for(LABELLING_QUEUE) as watch:
        record = wait_for_job(submission.job_id, show_progress=not json_output,
                              check_workers=watch.check, timeout=timeout)
    if json_output:
        output.print_json(record)
    else:
        print_job_summary(record)


def wait_for_job(job_id: int, show_progress: bool = True, poll: float = 0.5,
                 check_workers=None, timeout: float | None = None) -> dict:
    """Poll the job's rows until it is done, showing progress (happysad.progress) on stderr."""
    from db.errors import WaitTimeout
    from db.tables import JOB_FINISHED
    from happysad.progress import JobProgress

    started = time.monotonic()
    with JobProgress(job_id, enabled=show_progress) as progress:
        while True:
            record = _job_record(job_id)
            finished = record["status"] in JOB_FINISHED
            progress.update(record, finished)
            if finished:
                break
            if check_workers is not None:
                check_workers()  # the local workers it waits on are gone: say so, stop waiting
            if timeout and time.monotonic() - started > timeout:
                raise WaitTimeout(f"job {job_id} did not end within {timeout:.0f} s (it goes "
                                  f"on: `happysad jobs show {job_id}`)")
            time.sleep(poll)
    return _wait_for_report(job_id) if record["status"] == JOB_DONE else record


def _wait_for_report(job_id: int, seconds: float = 60) -> dict:
    """A done job gets its report a moment later, from the worker: wait, but not forever."""
    deadline = time.monotonic() + seconds
    record = _job_record(job_id)
    while not record["report"] and time.monotonic() < deadline:
        time.sleep(0.5)
        record = _job_record(job_id)
    return record


def print_job_summary(record: dict) -> None:
    from db import queries
    from db.session import session_scope

    with session_scope() as session:
        counts = queries.label_counts(session, record["job_id"])
    seconds = ((record["finished_at"] - record["submitted_at"]).total_seconds()
               if record["finished_at"] else None)
    output.print_table(
        f"job {record['job_id']} ({status_line(record)})", ["", ""],
        [["source", record["source"]], ["model version", record["model_version"]],
         ["images", record["total"]], ["classified", record["classified"]],
         ["failed", record["failed"]], ["non-image files skipped", record["skipped_files"]]]
        + ([["status reason", record["status_reason"]]] if record.get("status_reason") else [])
        + ([["waiting", record["waiting_for_worker"]]] if record.get("waiting_for_worker") else [])
        + [[f"label {label}", count] for label, count in sorted(counts.items())]
        + [["seconds", f"{seconds:.1f}" if seconds else None], ["report", record["report"]]],
        title_style=status_style(record))


def status_style(record: dict) -> str | None:
    """A job with some failed images is not a plain green "done"."""
    if record["status"] == JOB_DONE:
        return "yellow" if record["failed"] else "green"
    return "red" if record["status"] in (JOB_FAILED, JOB_CANCELLED) else None


def status_line(record: dict) -> str:
    """The status with what qualifies it: failed images, or a missing worker."""
    if record["status"] == JOB_DONE and record["failed"]:
        return f"done, {record['failed']} of {record['total']} images failed"
    if record.get("waiting_for_worker"):
        return f"{record['status']}, waiting for a worker"
    return record["status"]


@jobs_app.callback()
def jobs(ctx: typer.Context, json_output: JsonListOption = False,
         limit: Annotated[int, typer.Option(help="How many recent jobs.")] = 50) -> None:
    """Recent jobs: status, progress, model version, times, report."""
    if ctx.invoked_subcommand:
        return
    from db import queries
    from db.session import session_scope
    from happysad.records import job_record, row_counts

    with session_scope() as session:
        records = [job_record(job, row_counts(session, job), output.program())
                   for job in queries.list_jobs(session, limit)]
    if json_output:
        output.print_json(records)
        return
    output.print_table("jobs", ["job", "status", "model", "done", "failed", "total", "submitted",
                                "report"],
                       [[r["job_id"], r["status"], r["model_version"], r["classified"],
                         r["failed"], r["total"], r["submitted_at"].strftime("%Y-%m-%d %H:%M"),
                         r["report"]] for r in records])
    if waiting := next((r["waiting_for_worker"] for r in records if r["waiting_for_worker"]), None):
        output.say(f"running jobs are {waiting}", to_stderr=True)


@jobs_app.command("show")
def jobs_show(job: Annotated[int, typer.Argument(help="Job id.")], json_output: JsonOption = False) -> None:
    """One job: status, progress, model version, times, report location."""
    record = _job_record(job)
    if json_output:
        output.print_json(record)
    else:
        print_job_summary(record)


@jobs_app.command("cancel")
def jobs_cancel(job: Annotated[int, typer.Argument(help="Job id.")],
                reason: Annotated[str, typer.Option(help="Recorded with the job.")] = "cancelled from the command line",
                json_output: JsonOption = False) -> None:
    """Cancel a job: workers skip its remaining batches; the rows written so far stay."""
    import getpass

    from db import queries
    from db.session import session_scope

    with session_scope() as session:
        queries.cancel_job(session, job, cancelled_by=f"cli:{getpass.getuser()}", reason=reason)
    record = _job_record(job)
    if json_output:
        output.print_json(record)
        return
    output.say(f"job {job} cancelled: {record['classified'] + record['failed']} of "
               f"{record['total'] if record['total'] is not None else '?'} images "
               "have rows, its remaining batches are skipped")
