"""What every request passes before any of its body is read (a pure ASGI middleware, first):
an API write without the token is refused at once, and a body over HAPPYSAD_MAX_REQUEST_BYTES
is refused from its Content-Length, or while it streams, with 413 and one short line. Without
it, a 300 MB POST with no token was read whole (940 MB of server memory) before its 401."""

import json

from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

from db.errors import InvalidInput
from happysad.web.deps import require_writer

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def too_large_message(limit: int) -> str:
    return f"request body too large: at most {limit} bytes (HAPPYSAD_MAX_REQUEST_BYTES)"


def writer_refusal(authorization: str | None) -> JSONResponse | None:
    """The answer `require_writer` would give, given before the body is parsed; None: allowed."""
    scheme, _, credentials = (authorization or "").partition(" ")
    given = (HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials.strip())
             if scheme.lower() == "bearer" and credentials.strip() else None)
    try:
        require_writer(given)
    except HTTPException as refusal:
        return JSONResponse({"detail": refusal.detail}, refusal.status_code, refusal.headers)
    return None


class RequestGuard:
    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        if scope["path"].startswith("/api/") and scope["method"] in WRITE_METHODS:
            refusal = writer_refusal(headers.get("authorization"))
            if refusal is not None:
                return await refusal(scope, receive, send)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            answer = JSONResponse({"detail": too_large_message(self.max_bytes)}, 413,
                                  headers={"Connection": "close"})
            return await answer(scope, receive, send)
        await self._counted(scope, receive, send)

    async def _counted(self, scope, receive, send):
        """The app, its streamed body counted as it arrives (chunked, or longer than it said):
        past the limit, reading fails, and whatever the app then answers (FastAPI: a 400) is
        replaced by the 413."""
        received, answered = 0, False
        too_large = JSONResponse({"detail": too_large_message(self.max_bytes)}, 413,
                                 headers={"Connection": "close"})

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(too_large_message(self.max_bytes))
            return message

        async def guarded_send(message):
            nonlocal answered
            if received <= self.max_bytes:
                return await send(message)
            if message["type"] == "http.response.start" and not answered:
                answered = True
                await too_large(scope, receive, send)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if received <= self.max_bytes:
                raise
        if received > self.max_bytes and not answered:
            await too_large(scope, receive, send)


class BodyTooLarge(InvalidInput):
    """Raised inside the app's body read; the guard answers 413 in its place."""


def short_input(value, limit: int = 200):
    """A validation error's input as an answer shows it: whole if short, else its start."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return value if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"
