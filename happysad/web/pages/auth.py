"""Logging in: the token typed into a form becomes a signed session cookie."""

from typing import Annotated

from fastapi import APIRouter, Form, Request

from db.settings import get_settings
from happysad.web.deps import token_matches
from happysad.web.pages.common import check_csrf, redirect, render

router = APIRouter()


@router.get("/login")
def login_form(request: Request, next: str = "/"):
    return render(request, "login.html", next=safe_next(next), error=None,
                  writes_enabled=get_settings().api_token_value is not None)


@router.post("/login")
def login(request: Request, token: Annotated[str, Form()], csrf: Annotated[str, Form()],
          next: Annotated[str, Form()] = "/"):
    check_csrf(request, csrf)
    if not token_matches(token):
        return render(request, "login.html", status_code=401, next=safe_next(next),
                      writes_enabled=get_settings().api_token_value is not None,
                      error="wrong token")
    request.session["user"] = "writer"
    return redirect(safe_next(next), "logged in", request)


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()]):
    check_csrf(request, csrf)
    request.session.pop("user", None)
    return redirect("/", "logged out", request)


def safe_next(url: str) -> str:
    """Back to a page of this site only, never to another host."""
    return url if url.startswith("/") and not url.startswith("//") and "\\" not in url else "/"
