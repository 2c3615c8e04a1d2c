"""A job's predictions as both faces give them: the filters and the sort names, the one keyset
pager, and the one CSV writer. `happysad results` and the API's pages, CSV download and job
page all go through here, so the CLI's CSV and the API's CSV of a job are the same bytes.
"""

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, field_validator
from sqlalchemy.orm import Session

from db import queries
from db.errors import InvalidInput
from db.queries import PredictionOrder
from db.tables import Prediction
from happysad.records import prediction_records

# The API called the written order `id` before both faces shared PredictionOrder's names; the
# old name is still accepted (README: "The API").
SORT_ALIASES = {"id": PredictionOrder.LISTING}
SORT_HELP = ("listing: in the order written; uncertain: least confident first (classified "
             "images only); id: the API's former name of listing, still accepted")
# A label the database can store: PostgreSQL text cannot hold a NUL character.
Label = Annotated[str, StringConstraints(min_length=1, max_length=4096, pattern=r"^[^\x00]*$")]


class PredictionFilters(BaseModel):
    """The filters of `happysad results`, the API and the job page, and the order."""

    label: Label | None = None
    min_confidence: float | None = Field(None, ge=0, le=1)
    max_confidence: float | None = Field(None, ge=0, le=1)
    min_familiarity: float | None = Field(None, ge=0, le=1, description=(
        "Only images at least this like the training images (rows without one are left out)."))
    max_familiarity: float | None = Field(None, ge=0, le=1, description=(
        "Only images at most this like the training images: below 0.5 is unfamiliar."))
    errors: bool = Field(False, description="Only images that failed.")
    sort: PredictionOrder = Field(PredictionOrder.LISTING, description=SORT_HELP)

    @field_validator("sort", mode="before")
    @classmethod
    def _old_sort_names(cls, value):
        return SORT_ALIASES.get(value, value)

    @property
    def uncertain_first(self) -> bool:
        """Least confident first; images that failed have no confidence, so with `errors` the
        rows come in the order written."""
        return self.sort == PredictionOrder.UNCERTAIN and not self.errors


def parse_cursor(cursor: str | None, uncertain_first: bool):
    """`id` for the written order, `confidence:id` for uncertain first (both from next_cursor)."""
    if cursor is None:
        return None
    try:
        if not uncertain_first:
            value = int(cursor)
            if not 0 <= value < 2**31:
                raise ValueError
            return value
        confidence, row_id = cursor.split(":")
        after = float(confidence), int(row_id)
        if not (0 <= after[0] <= 1 and 0 <= after[1] < 2**31):
            raise ValueError
        return after
    except ValueError:
        order = "uncertain" if uncertain_first else "listing"
        raise InvalidInput(f"not a cursor for sort={order}: {cursor[:80]!r} (use the "
                           "next_cursor of the previous page)") from None


def page_of_predictions(session: Session, job_id: int, filters: PredictionFilters,
                        cursor: str | None, limit: int) -> tuple[list[Prediction], str | None]:
    """One page after `cursor`, and the cursor of the next (None when this page is the last):
    keyset paging, so a deep page costs what the first does."""
    after = parse_cursor(cursor, filters.uncertain_first)
    ranges = dict(label=filters.label, min_confidence=filters.min_confidence,
                  max_confidence=filters.max_confidence,
                  min_familiarity=filters.min_familiarity,
                  max_familiarity=filters.max_familiarity)
    if filters.uncertain_first:
        query = queries.uncertain_first_query(job_id, after=after, **ranges)
    else:
        query = queries.predictions_query(job_id, errors_only=filters.errors,
                                          after_id=after or 0, **ranges)
    rows = list(session.scalars(query.limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], (f"{last.confidence!r}:{last.id}" if filters.uncertain_first
                          else str(last.id))


def prediction_pages(open_session: Callable[[], AbstractContextManager[Session]], job_id: int,
                     filters: PredictionFilters, page_size: int = 1000,
                     limit: int | None = None) -> Iterator[list[dict]]:
    """Every matching prediction as records (with reviewed labels), a page at a time, at most
    `limit`; each page is read in a short session of its own from `open_session` (a long
    download holds no transaction open), so a million rows never sit in memory."""
    cursor, left = None, limit
    while left is None or left > 0:
        size = page_size if left is None else min(page_size, left)
        with open_session() as session:
            rows, cursor = page_of_predictions(session, job_id, filters, cursor, size)
            page = prediction_records(session, rows)
        if page:
            yield page
        if left is not None:
            left -= len(page)
        if cursor is None:
            return


def csv_columns(class_names: list[str]) -> list[str]:
    """One p_<class> column per class of the job's model, whatever the first row holds."""
    return ["id", "uri", "label", "confidence", "familiarity", "error", "model_version",
            "worker_host", "created_at", "reviewed_label"] + [f"p_{name}" for name in class_names]


def _csv_cell(value):
    """Timestamps as ISO 8601 (`2026-12-06T06:23:21+00:00`, as the JSON writes them)."""
    return value.isoformat() if isinstance(value, datetime) else value


def csv_chunks(pages: Iterable[list[dict]], class_names: list[str]) -> Iterator[str]:
    """The predictions as CSV text: the header, then one chunk per page (to stream)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=csv_columns(class_names), extrasaction="ignore")
    writer.writeheader()
    for page in pages:
        for record in page:
            probabilities = record["probabilities"] or {}
            writer.writerow({key: _csv_cell(value) for key, value in record.items()}
                            | {f"p_{name}": value for name, value in probabilities.items()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # no page at all: the header alone
        yield buffer.getvalue()
