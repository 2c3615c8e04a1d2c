"""Printing for the command line: JSON for machines, Rich tables for people, one-line errors."""

import json
import sys
from datetime import datetime

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()
error_console = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def print_json(payload) -> None:
    sys.stdout.write(json.dumps(payload, default=_default) + "\n")


def print_table(title: str | None, columns: list[str], rows: list[list]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*["" if cell is None else str(cell) for cell in row])
    console.print(table)


def fail(message: str, code: int = 1):
    error_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise SystemExit(code)


def model_version_record(row) -> dict:
    return {"version": row.version, "created_at": row.created_at, "production": row.is_production,
            "architecture": row.architecture, "class_names": row.class_names,
            "image_size": row.image_size, "preprocessing_version": row.preprocessing_version,
            "dataset_source": row.dataset_source, "dataset_fingerprint": row.dataset_fingerprint,
            "metrics": row.metrics, "params": row.params, "path": row.path,
            "model_sha256": row.model_sha256}


def job_record(job, counts: dict[str, int]) -> dict:
    return {"job_id": job.id, "status": job.status, "status_reason": job.status_reason,
            "source": job.source,
            "model_version": job.model_version, "total": job.total_images,
            "classified": counts["classified"], "failed": counts["failed"],
            "skipped_files": job.skipped_files, "batches_total": job.batches_total,
            "batches_done": job.batches_done, "submitted_at": job.submitted_at,
            "finished_at": job.finished_at, "report": job.report_path,
            "cancelled_at": job.cancelled_at, "cancelled_by": job.cancelled_by,
            "cancel_reason": job.cancel_reason}
