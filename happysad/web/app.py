"""The app factory: the HTTP API under /api/v1 (OpenAPI at /docs), the pages, static files,
one-line errors. Built per call, from the settings in force, so tests get a fresh app."""

import hashlib
import hmac
import secrets
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from db.settings import get_settings
from happysad.web import errors
from happysad.web.api import api_router
from happysad.web.pages import pages_router
from happysad.web.request_guard import RequestGuard

STATIC_FOLDER = Path(__file__).parent / "static"
SESSION_COOKIE = "happysad_session"
SESSION_SECONDS = 8 * 3600

# Pages run no inline script and load nothing from elsewhere; /docs (Swagger UI) is left out
# because its page starts itself with an inline script.
PAGE_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def session_secret(token: str | None) -> str:
    """The key that signs page sessions: derived from the token, so changing the token logs
    every page out; random per process when there is no token (nobody can log in then)."""
    if token is None:
        return secrets.token_hex(32)
    return hmac.new(token.encode(), b"happysad web session", hashlib.sha256).hexdigest()


async def security_headers(request: Request, call_next):
    response = await call_next(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if not request.url.path.startswith(("/docs", "/static-offline-docs")):
        response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response


# Open without the token when reads need it: the login form, and the style sheet it uses.
OPEN_PATHS = ("/login", "/static/")


async def token_for_reads(request: Request, call_next):
    """Beyond loopback, every page and endpoint needs the token: a logged-in page session or
    `Authorization: Bearer TOKEN`. A page asks to log in first; the API answers 401."""
    from fastapi.responses import JSONResponse, RedirectResponse

    from happysad.web.deps import token_matches
    from happysad.web.pages.common import logged_in

    path = request.url.path
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if (path == OPEN_PATHS[0] or path.startswith(OPEN_PATHS[1]) or logged_in(request)
            or (scheme.lower() == "bearer" and token_matches(given.strip()))):
        return await call_next(request)
    if path.startswith(("/api/", "/docs", "/openapi.json")):
        return JSONResponse({"detail": "this server is not on loopback: reads need "
                                       "`Authorization: Bearer TOKEN` with its HAPPYSAD_API_TOKEN"},
                            status_code=401, headers={"WWW-Authenticate": "Bearer"})
    return RedirectResponse(f"/login?next={quote(path)}", status_code=303)


def create_app(reads_need_token: bool = False) -> FastAPI:
    """The app; `reads_need_token` when it serves beyond loopback (happysad.web.server)."""
    # fastapi-offline serves Swagger UI's files itself: /docs works with no network.
    from fastapi_offline import FastAPIOffline

    settings = get_settings()
    app = FastAPIOffline(
        title="happysad", version="1",
        description="Batch image labelling: submit a folder or bucket, follow the job, page "
                    "through its predictions, manage model versions and retrains. Writes, and "
                    "reads beyond loopback, need `Authorization: Bearer HAPPYSAD_API_TOKEN`.",
        redoc_url=None)
    app.middleware("http")(security_headers)
    if reads_need_token:  # inside the session middleware (added next), so it sees the login
        app.middleware("http")(token_for_reads)
    app.add_middleware(SessionMiddleware, secret_key=session_secret(settings.api_token_value),
                       session_cookie=SESSION_COOKIE, max_age=SESSION_SECONDS,
                       same_site="strict")
    # First of ours (added last): the token and the Content-Length checked before any body.
    app.add_middleware(RequestGuard, max_bytes=settings.max_request_bytes)
    app.include_router(api_router, prefix="/api/v1")
    app.include_router(pages_router)
    app.mount("/static", StaticFiles(directory=STATIC_FOLDER), name="static")
    errors.register(app)
    return app
