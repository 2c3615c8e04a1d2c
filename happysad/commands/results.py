"""`happysad results` and `happysad report`: a job's predictions, and its report rebuilt."""

import csv
import sys
from typing import Annotated

import typer

from happysad import output


def results_command(
    job: Annotated[int, typer.Argument(help="Job id.")],
    label: Annotated[str | None, typer.Option(help="Only this label.")] = None,
    min_confidence: Annotated[float | None, typer.Option(help="Only predictions at least this sure.")] = None,
    max_confidence: Annotated[float | None, typer.Option(help="Only predictions at most this sure.")] = None,
    errors: Annotated[bool, typer.Option("--errors", help="Only images that failed.")] = False,
    format: Annotated[str, typer.Option(help="table, csv or json.")] = "table",
    limit: Annotated[int | None, typer.Option(help="At most this many rows.")] = None,
) -> None:
    """A job's predictions: label, per-class probabilities, or the error."""
    from db import queries
    from db.session import session_scope

    if format not in ("table", "csv", "json"):
        output.fail("--format must be table, csv or json")
    with session_scope() as session:
        pinned = queries.get_job(session, job).model_version
        class_names = list(queries.get_model_version(session, pinned).class_names)
        predictions = queries.iter_predictions(session, job, limit=limit, label=label,
                                               min_confidence=min_confidence,
                                               max_confidence=max_confidence, errors_only=errors)
        rows = ({"uri": p.uri, "label": p.label, "confidence": p.confidence,
                 "probabilities": p.probabilities, "error": p.error,
                 "model_version": p.model_version, "worker_host": p.worker_host,
                 "created_at": p.created_at, "reviewed_label": reviewed}
                for p, reviewed in with_reviewed_labels(session, predictions))
        if format == "json":
            output.print_json(list(rows))
        elif format == "csv":
            _write_csv(rows, class_names)
        else:
            output.print_table(f"job {job}", ["uri", "label", "confidence", "probabilities",
                                              "error", "reviewed_label"],
                               [[r["uri"], r["label"],
                                 None if r["confidence"] is None else f"{r['confidence']:.3f}",
                                 None if r["probabilities"] is None else " ".join(
                                     f"{k}={v:.3f}" for k, v in r["probabilities"].items()),
                                 r["error"], r["reviewed_label"]] for r in rows])


def with_reviewed_labels(session, predictions, page_size: int = 1000):
    """(prediction, its reviewed label or None), the verdicts looked up a page at a time."""
    from itertools import islice

    from db.reviews import current_reviews

    predictions = iter(predictions)
    while page := list(islice(predictions, page_size)):
        reviews = current_reviews(session, [p.id for p in page])
        for prediction in page:
            review = reviews.get(prediction.id)
            yield prediction, review.reviewed_label if review else None


def _write_csv(rows, class_names: list[str]) -> None:
    """One p_<class> column per class of the job's model, whatever the first row holds."""
    columns = ["uri", "label", "confidence", "error", "model_version", "worker_host",
               "created_at", "reviewed_label"] + [f"p_{name}" for name in class_names]
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        probabilities = row.pop("probabilities") or {}
        writer.writerow(row | {f"p_{name}": value for name, value in probabilities.items()})


def report_command(job: Annotated[int, typer.Argument(help="Job id.")]) -> None:
    """Rebuild a job's plots and report.html."""
    from db import queries
    from db.session import session_scope
    from worker.report import build_report

    path = build_report(job)
    with session_scope() as session:
        queries.set_report_path(session, job, path)
    output.console.print(f"report: {path}", highlight=False)
