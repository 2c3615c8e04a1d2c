"""The project's errors as HTTP answers: the CLI's one line, as JSON `{"detail": ...}` for the
API and as a small page for the pages; never a 500 for bad input."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from db.errors import one_line  # the CLI's one line, also for the pages that import it here


def status_by_error() -> list[tuple[type[BaseException], int]]:
    """Most specific first: the first match wins. Only the project's own errors (and a value
    the database refuses) are answers; any other exception is a bug and stays a 500 with its
    traceback in the log, as the CLI keeps it."""
    from sqlalchemy.exc import DataError

    from db.errors import HappysadError, InvalidInput, Unavailable, WaitTimeout
    from db.queries import JobFinished, NothingToRollBack, NotFound
    from db.session import DatabaseUnavailable
    from scheduler.submit import BrokerUnavailable, SubmitError
    from trainer.model_store import ModelLoadError
    from trainer.storage import StorageError

    return [(NotFound, 404), (JobFinished, 409), (NothingToRollBack, 409), (ModelLoadError, 409),
            (SubmitError, 400), (StorageError, 400), (BrokerUnavailable, 503),
            (DatabaseUnavailable, 503), (Unavailable, 503), (DataError, 400),
            (WaitTimeout, 504), (InvalidInput, 400), (HappysadError, 400)]


def register(app: FastAPI) -> None:
    table = status_by_error()

    async def answer(request: Request, error: Exception):
        status = next(code for kind, code in table if isinstance(error, kind))
        message = one_line(getattr(error, "orig", None) or error)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": message}, status_code=status)
        from happysad.web.pages.common import error_page

        return error_page(request, message, status)

    for kind, _status in table:
        app.add_exception_handler(kind, answer)

    from fastapi.exception_handlers import http_exception_handler
    from starlette.exceptions import HTTPException

    async def http_answer(request: Request, error: HTTPException):
        if request.url.path.startswith("/api/") or error.status_code < 400:
            return await http_exception_handler(request, error)
        from happysad.web.pages.common import error_page

        return error_page(request, str(error.detail), error.status_code)

    app.add_exception_handler(HTTPException, http_answer)

    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError

    from happysad.web.request_guard import short_input

    async def validation_answer(request: Request, error: RequestValidationError):
        """FastAPI's 422, but never echoing a large input whole (a 50 MB body came back)."""
        items = [{**item, "input": short_input(item["input"])} if "input" in item else item
                 for item in error.errors()]
        return JSONResponse({"detail": jsonable_encoder(items)}, status_code=422)

    app.add_exception_handler(RequestValidationError, validation_answer)
