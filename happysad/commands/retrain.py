"""`happysad retrain`: the scheduled retrain, now; `retrain list`: the record of runs."""

from typing import Annotated

import typer

from happysad import output
from happysad.output import JsonListOption, JsonOption
from worker.task_names import TRAINING_QUEUE


retrain_app = typer.Typer(help="Retrain now, and the record of retrain runs.",
                          invoke_without_command=True)


@retrain_app.callback()
def retrain(ctx: typer.Context,
            force: Annotated[bool, typer.Option(help="Train even if the data has not changed.")] = False,
            wait: Annotated[bool, typer.Option(help="Wait for the run and print its outcome.")] = False,
            timeout: Annotated[float | None, typer.Option(help="With --wait: give up waiting after this many seconds.")] = None,
            json_output: JsonOption = False) -> None:
    """Run the scheduled retrain now, on the training queue."""
    if ctx.invoked_subcommand:
        return
    from db.session import session_scope
    from db.settings import get_settings
    from happysad.local_workers import local_workers_for
    from happysad.records import retrain_run_record
    from scheduler.retrain import request_retrain, wait_for_run

    slot = request_retrain(get_settings(), force)
    if not wait:
        output.console.print(f"retrain {slot} queued on the training queue")
        return
    with local_workers_for(TRAINING_QUEUE) as watch:
        run = wait_for_run(slot, session_scope, timeout, check_workers=watch.check)
    record = retrain_run_record(run)
    if json_output:
        output.print_json(record)
    else:
        version = (f"v{run.model_version} {'promoted' if run.promoted else 'not promoted'}"
                   if run.model_version else "no new version")
        output.say(f"retrain {slot}: {run.status}, {version}: {run.reason}")


@retrain_app.command("list")
def retrain_list(json_output: JsonListOption = False) -> None:
    """Recent retrain runs: status, times, resulting version, why (not) promoted."""
    from db import queries
    from db.session import session_scope
    from happysad.records import retrain_run_record

    with session_scope() as session:
        rows = [retrain_run_record(r) for r in queries.list_retrain_runs(session)]
    if json_output:
        output.print_json(rows)
        return
    output.print_table("retrain runs", ["id", "slot", "status", "version", "promoted", "reason"],
                       [[r["id"], r["slot"], r["status"], r["model_version"], output.plain(r["promoted"]),
                         r["reason"]] for r in rows])
