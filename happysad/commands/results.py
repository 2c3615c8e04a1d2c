"""`happysad results` and `happysad report`: a job's predictions, and its report rebuilt."""

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer

from db.queries import PredictionOrder
from happysad import output


class ResultsFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"  # one p_<class> column per class of the job's model
    JSON = "json"  # one JSON array, built in memory
    JSONL = "jsonl"  # JSON Lines: one object per line, streamed (for large jobs)


# Parquet is not offered: it would need pyarrow, a large binary dependency for one output
# format; DuckDB, pandas and Polars read the JSON Lines and CSV written here.


def results_command(
    job: Annotated[int, typer.Argument(help="Job id.")],
    label: Annotated[str | None, typer.Option(help="Only this label (one of the job's classes).")] = None,
    min_confidence: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Only predictions at least this sure, in [0, 1].")] = None,
    max_confidence: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Only predictions at most this sure, in [0, 1].")] = None,
    min_familiarity: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Only images at least this like the training images, in [0, 1] (rows without a familiarity are left out).")] = None,
    max_familiarity: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Only images at most this like the training images, in [0, 1]: below 0.5 is unfamiliar.")] = None,
    errors: Annotated[bool, typer.Option("--errors", help="Only images that failed.")] = False,
    sort: Annotated[PredictionOrder, typer.Option(help="listing: as written; uncertain: least confident first (classified images only).")] = PredictionOrder.LISTING,
    format: Annotated[ResultsFormat, typer.Option(help="json: one array; jsonl: one object per line.")] = ResultsFormat.TABLE,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many rows.")] = None,
) -> None:
    """A job's predictions: label, per-class probabilities, or the error."""
    from db import queries
    from db.session import session_scope
    from happysad.predictions import PredictionFilters, csv_chunks, prediction_pages

    if min_confidence is not None and max_confidence is not None and min_confidence > max_confidence:
        raise typer.BadParameter(f"{min_confidence} is above --max-confidence {max_confidence}",
                                 param_hint="--min-confidence")
    if min_familiarity is not None and max_familiarity is not None and min_familiarity > max_familiarity:
        raise typer.BadParameter(f"{min_familiarity} is above --max-familiarity {max_familiarity}",
                                 param_hint="--min-familiarity")
    if errors and sort == PredictionOrder.UNCERTAIN:
        raise typer.BadParameter("an image that failed has no confidence to sort by",
                                 param_hint="--sort uncertain --errors")
    with session_scope() as session:
        pinned = queries.get_job(session, job).model_version
        class_names = list(queries.get_model_version(session, pinned).class_names)
    if label is not None and label not in class_names:
        raise typer.BadParameter(f"{label!r} is not a class of job {job} (its classes: "
                                 f"{', '.join(class_names)})", param_hint="--label")
    filters = PredictionFilters(label=label, min_confidence=min_confidence,
                                max_confidence=max_confidence, min_familiarity=min_familiarity,
                                max_familiarity=max_familiarity, errors=errors, sort=sort)
    pages = prediction_pages(session_scope, job, filters, limit=limit)
    if format == ResultsFormat.CSV:
        for chunk in csv_chunks(pages, class_names):
            sys.stdout.write(chunk)
    elif format == ResultsFormat.JSONL:
        for page in pages:
            sys.stdout.write("".join(json.dumps(row, default=output.json_default) + "\n"
                                     for row in page))
    else:
        rows = [row for page in pages for row in page]
        if format == ResultsFormat.JSON:
            output.print_json(rows)
        else:
            _print_table(job, rows)


def _print_table(job: int, rows: list[dict]) -> None:
    """The rows as a table; the familiarity column only where a row has one (a model version
    without it leaves the room to the file names)."""
    familiar = any(row["familiarity"] is not None for row in rows)
    headers = ["id", "uri", "label", "confidence", "probabilities",
               *(["familiarity"] if familiar else []), "error", "reviewed_label"]
    output.print_table(f"job {job}", headers, [
        [r["id"], r["uri"], r["label"],
         None if r["confidence"] is None else f"{r['confidence']:.3f}",
         None if r["probabilities"] is None else " ".join(
             f"{k}={v:.3f}" for k, v in r["probabilities"].items()),
         *([None if r["familiarity"] is None else f"{r['familiarity']:.3f}"] if familiar else []),
         r["error"], r["reviewed_label"]] for r in rows])


def report_command(job: Annotated[int, typer.Argument(help="Job id.")]) -> None:
    """Rebuild a job's plots and report.html."""
    from db import queries
    from db.session import session_scope
    from db.settings import get_settings
    from worker.report import build_report

    path = build_report(job, settings=get_settings(), sessions=session_scope)
    with session_scope() as session:
        queries.set_report_path(session, job, path)
    output.say(f"report: {path}")
