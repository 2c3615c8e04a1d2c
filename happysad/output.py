"""Printing for the command line: JSON for machines, Rich tables for people, one-line errors."""

import json
import os
import shlex
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

console = Console()
error_console = Console(stderr=True)

# Said truthfully: a command about one thing prints an object, a list command an array.
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
JsonListOption = Annotated[bool, typer.Option(
    "--json", help="Print a JSON array, one object per row.")]


def json_default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def print_json(payload) -> None:
    sys.stdout.write(json.dumps(payload, default=json_default) + "\n")


def plain(value) -> str:
    """A value as a person reads it: no Python reprs (None, True, ['a', 'b'])."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, list | tuple):
        return ", ".join(plain(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}={plain(item)}" for key, item in value.items())
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


LONGEST_UNBROKEN_WORD = 12  # a value's word up to this long keeps whole if the width allows


def print_table(title: str | None, columns: list[str], rows: list[list],
                title_style: str | None = None) -> None:
    """Cells are text, never Rich markup: a file named "[bold]x.jpg" shows as it is named.
    Headers never wrap (each column is at least its header wide); values wrap at spaces, and
    a word longer than its column (a path) is folded."""
    cells = [[Text("" if cell is None else str(cell)) for cell in row] for row in rows]
    table = Table(title=title, title_style=title_style, box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, padding=(0, 1, 0, 0), show_header=any(columns))
    for column, width in zip(columns, _column_widths(columns, cells), strict=True):
        table.add_column(column, overflow="fold", width=width)
    for row in cells:
        table.add_row(*row)
    console.print(table)


def _column_widths(columns: list[str], cells: list[list[Text]]) -> list[int]:
    """Each column's width, laid out here because Rich's own narrowing can cut a header: at
    least the header (and the values' words where there is room), the rest of the console's
    width given to the columns that want least more first (water-filling)."""
    def longest(index: int, split) -> int:
        return max([len(part) for row in cells for part in split(row[index].plain)] or [0])

    headers = [len(column) for column in columns]
    natural = [max(header, longest(index, str.splitlines))
               for index, header in enumerate(headers)]
    words = [max(header, min(longest(index, str.split), LONGEST_UNBROKEN_WORD))
             for index, header in enumerate(headers)]
    room = console.width - 2 * len(columns) + 1  # a padding and a rule between columns
    if sum(natural) <= room:
        return natural
    widths = list(words if sum(words) <= room else headers)
    spare = max(0, room - sum(widths))
    # The spare width goes to the columns that want least first, each whole while it fits
    # (a key column keeps its words), then shared out among the rest (a path folds).
    wanting = sorted(range(len(columns)), key=lambda index: natural[index] - widths[index])
    for place, index in enumerate(wanting):
        grant = min(natural[index] - widths[index], spare // (len(wanting) - place))
        widths[index] += grant
        spare -= grant
    return widths


def say(message: str, to_stderr: bool = False) -> None:
    """Print a line that may hold a user's paths or file names, literally (no markup)."""
    (error_console if to_stderr else console).print(message, markup=False, highlight=False,
                                                    soft_wrap=True)


def headline_scores(metrics: dict, class_names: list[str]) -> str:
    """The headline precision and recall, saying which class they are for (trainer.evaluate:
    the second class with two, the macro average with more)."""
    which = (f"for {class_names[1]!r}" if len(class_names) == 2
             else f"macro average of {len(class_names)} classes")
    return f"precision {metrics['precision']:.3f}, recall {metrics['recall']:.3f} ({which})"


def program() -> str:
    """How to run `happysad` again from here, as this process was run: `happysad` when that
    name finds this very script on PATH, else the script's path (`.venv/bin/happysad` after
    `make demo`), or `python -m happysad.cli`. A hint must work when pasted as shown."""
    script = sys.argv[0] if sys.argv else ""
    if Path(script).name != "happysad":
        return f"{shlex.quote(sys.executable)} -m happysad.cli"
    found = shutil.which("happysad")
    if found and Path(found).resolve() == Path(script).resolve():
        return "happysad"
    path = Path(script).absolute()
    relative = os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    return shlex.quote(relative if "/" in relative else f"./{relative}")


def hint(message: str) -> str:
    """A message's `happysad ...` commands written as program() runs them."""
    name = program()
    return message if name == "happysad" else message.replace("`happysad ", f"`{name} ")


def fail(message: str, code: int = 1):
    message = hint(message)
    # The message often holds a user's path or file name: printed as written, never as markup.
    error_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
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
            "cancel_reason": job.cancel_reason, "waiting_for_worker": _waiting_reason(job.status)}


def _waiting_reason(status: str) -> str | None:
    from scheduler.presence import job_waiting_reason

    return job_waiting_reason(status, program())

