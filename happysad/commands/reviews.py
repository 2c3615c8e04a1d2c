"""`happysad reviews`: confirm or correct a prediction, list the verdicts, and export the
reviewed images as a labelled folder (copies; the user's files are never moved)."""

import getpass
from pathlib import Path
from typing import Annotated

import typer

from happysad import output
from happysad.output import JsonListOption, JsonOption

reviews_app = typer.Typer(help="People's verdicts on predictions: the next retrain trains on "
                               "them.", no_args_is_help=True)


@reviews_app.command("add")
def add(prediction: Annotated[int, typer.Argument(help="Prediction id (the `id` column of "
                                                       "`results JOB`, in every format).")],
        label: Annotated[str, typer.Argument(help="The image's true class.")],
        reviewer: Annotated[str | None, typer.Option(help="Who; default: your user name.")] = None,
        json_output: JsonOption = False) -> None:
    """Confirm (the model's label) or correct (another class) one prediction."""
    from db import queries
    from db.queries.reviews import review_prediction
    from db.session import session_scope
    from happysad.records import review_record

    with session_scope() as session:
        row = review_prediction(session, prediction, label, reviewer or getpass.getuser())
        record = review_record(row, queries.get_prediction(session, prediction).uri)
    if json_output:
        output.print_json(record)
    else:
        verdict = "confirmed" if record["confirmed"] else f"corrected from {row.model_label}"
        output.say(f"prediction {prediction}: {label} ({verdict})")


@reviews_app.command("list")
def list_reviews(job: Annotated[int | None, typer.Option(help="Only this job.")] = None,
                 history: Annotated[bool, typer.Option(help="Also verdicts replaced later.")] = False,
                 limit: Annotated[int, typer.Option(help="At most this many.")] = 1000,
                 json_output: JsonListOption = False) -> None:
    """The verdicts in the order they were given."""
    from db.queries import reviews
    from db.session import session_scope
    from happysad.records import review_record

    with session_scope() as session:
        rows = reviews.list_reviews(session, job, history, limit=limit)
        uris = reviews.prediction_uris(session, [row.prediction_id for row in rows])
        records = [review_record(row, uris[row.prediction_id]) for row in rows]
    if json_output:
        output.print_json(records)
        return
    output.print_table("reviews", ["id", "job", "uri", "model", "reviewed", "by", "at"],
                       [[r["id"], r["job_id"], r["uri"], r["model_label"], r["reviewed_label"],
                         r["reviewer"], r["reviewed_at"].strftime("%Y-%m-%d %H:%M:%S")
                         + (" (replaced)" if r["superseded_at"] else "")] for r in records])


@reviews_app.command("export")
def export(dest: Annotated[Path, typer.Argument(help="A new or empty folder.")],
           json_output: JsonOption = False) -> None:
    """Copy every reviewed image into DEST/<reviewed label>/, one per image content (the
    latest verdict wins), read through each job's own storage."""
    from db.queries.reviews import reviewed_images
    from db.session import session_scope
    from trainer.corrections import export_corrections, read_corrections

    with session_scope() as session:
        reviewed = reviewed_images(session)
    if not reviewed:
        output.fail("no reviewed images to export (review some on a job's page, with the "
                    "API, or `happysad reviews add`)")
    corrections, unreadable = read_corrections(reviewed)
    try:
        summary = export_corrections(corrections, dest) | {"unreadable": unreadable}
    except (FileExistsError, PermissionError, NotADirectoryError) as error:
        output.fail(str(error))
    if json_output:
        output.print_json(summary)
        return
    counts = ", ".join(f"{label} {count}" for label, count in summary["per_class"].items())
    output.say(f"exported {summary['images']} reviewed images to {summary['dest']} ({counts})")
    for item in unreadable:  # names printed as they are, never as markup
        output.say(f"not exported: {item['uri']}: {item['reason']}", to_stderr=True)
