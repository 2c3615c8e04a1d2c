"""`happysad jobs resume N` and `happysad jobs retry N --failed`: a job whose listing stopped
goes on, and the failed images of a finished job get a new attempt."""

from typing import Annotated

import typer

from happysad import output
from happysad.commands.jobs import jobs_app
from happysad.output import JsonOption


@jobs_app.command("resume")
def jobs_resume(job: Annotated[int, typer.Argument(help="Job id.")],
                json_output: JsonOption = False) -> None:
    """Go on with a job whose submitter died: list its source again, send what is not recorded
    yet, and send its unwritten batches again."""
    from db.session import session_scope
    from db.settings import get_settings
    from scheduler.celery_app import sender_app
    from scheduler.resume import resume_job
    from scheduler.submit import check_broker
    from worker.identity import worker_identity

    app = sender_app()
    check_broker(app, get_settings())
    resumed = resume_job(app, session_scope, job,
                         f"resumed by `happysad jobs resume` ({worker_identity('cli')})")
    record = vars(resumed)
    if json_output:
        output.print_json(record)
        return
    listed = (f"listed again: {resumed.new_images} new images in {resumed.new_batches} batches "
              f"({resumed.already_recorded} were recorded before); " if resumed.listed_again
              else "")
    output.say(f"job {job} resumed: {listed}{resumed.resent_batches} unwritten "
               f"batches sent again; {resumed.total_images} images in all")


@jobs_app.command("retry")
def jobs_retry(job: Annotated[int, typer.Argument(help="Job id.")],
               failed: Annotated[bool, typer.Option("--failed", help="Retry the images that got error rows.")] = False,
               json_output: JsonOption = False) -> None:
    """A new attempt for a done job's images that failed (e.g. after a model file came back)."""
    if not failed:
        output.fail("say what to retry: `happysad jobs retry JOB --failed`")
    from db.session import session_scope
    from db.settings import get_settings
    from scheduler.celery_app import sender_app
    from scheduler.resume import retry_failed
    from scheduler.submit import check_broker

    app = sender_app()
    check_broker(app, get_settings())
    retried = retry_failed(app, session_scope, job)
    if json_output:
        output.print_json(vars(retried))
        return
    output.say(f"job {job}: {retried.images} failed images sent again in "
               f"{retried.batches} batches")
