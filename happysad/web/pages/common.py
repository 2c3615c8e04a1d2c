"""What every page shares: the Jinja2 templates (autoescaped: a file name is text, never
markup), the logged-in user, and the CSRF token that every form carries."""

import hmac
import secrets
from functools import cache
from pathlib import Path

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

TEMPLATE_FOLDER = Path(__file__).resolve().parents[1] / "templates"


@cache
def environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(loader=FileSystemLoader(TEMPLATE_FOLDER), autoescape=True,
                       undefined=StrictUndefined)


def csrf_token(request: Request) -> str:
    """One random token per browser session; a form posted without it is refused, and another
    site cannot read it (the session cookie is SameSite=Strict too)."""
    if "csrf" not in request.session:
        request.session["csrf"] = secrets.token_urlsafe(32)
    return request.session["csrf"]


def check_csrf(request: Request, token: str) -> None:
    expected = request.session.get("csrf")
    if not expected or not hmac.compare_digest(expected.encode(), token.encode()):
        raise HTTPException(403, "this form has expired or came from another site: reload the "
                                 "page and try again")


def logged_in(request: Request) -> bool:
    return request.session.get("user") == "writer"


def require_page_writer(request: Request, csrf: str) -> str:
    """A form that writes: a logged-in session and the session's CSRF token."""
    check_csrf(request, csrf)
    if not logged_in(request):
        raise HTTPException(401, "log in first: writes need the server's HAPPYSAD_API_TOKEN")
    return "web"


def render(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    page = environment().get_template(template).render(
        request=request, csrf=csrf_token(request), logged_in=logged_in(request),
        flash=request.session.pop("flash", None),
        flash_kind=request.session.pop("flash_kind", "ok"), **context)
    return HTMLResponse(page, status_code=status_code)


def redirect(url: str, flash: str | None = None, request: Request | None = None,
             kind: str = "ok"):
    """Go to `url` showing `flash` there, styled by its kind: ok, warning or error."""
    if flash and request is not None:
        request.session["flash"], request.session["flash_kind"] = flash, kind
    return RedirectResponse(url, status_code=303)  # after a POST, the browser GETs the page


def error_page(request: Request, message: str, status_code: int) -> HTMLResponse:
    return render(request, "error.html", status_code=status_code, message=message,
                  status_code_text=status_code)
