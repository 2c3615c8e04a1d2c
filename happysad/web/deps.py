"""Dependencies shared by the routes: a database session for reads, and the writer (a caller
holding HAPPYSAD_API_TOKEN)."""

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from db.session import session_scope
from db.settings import get_settings

bearer = HTTPBearer(auto_error=False, description="HAPPYSAD_API_TOKEN")


def db_session() -> Iterator[Session]:
    """A read session. Writes open their own transaction inside the route, so they are
    committed before the answer is sent."""
    with session_scope() as session:
        yield session


def token_matches(given: str | None) -> bool:
    token = get_settings().api_token_value
    return bool(token and given) and hmac.compare_digest(given.encode(), token.encode())


def require_writer(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
    """Writes need `Authorization: Bearer TOKEN`; with no token configured there are none."""
    if get_settings().api_token_value is None:
        raise HTTPException(403, "writes are disabled: the server has no HAPPYSAD_API_TOKEN")
    if credentials is None or not token_matches(credentials.credentials):
        raise HTTPException(401, "this needs `Authorization: Bearer TOKEN` with the server's "
                                 "HAPPYSAD_API_TOKEN", headers={"WWW-Authenticate": "Bearer"})
    return "api"


SessionDep = Annotated[Session, Depends(db_session)]
WriterDep = Annotated[str, Depends(require_writer)]
