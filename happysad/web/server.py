"""`happysad serve`: check the address against the token, then run the app under Uvicorn."""

import ipaddress
import logging

from db.errors import InvalidInput
from db.settings import get_settings

logger = logging.getLogger(__name__)


class UnsafeAddress(InvalidInput):
    """Serving beyond this machine without a token: anyone who can reach it could read it."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_address(host: str) -> None:
    if not is_loopback(host) and get_settings().api_token_value is None:
        raise UnsafeAddress(f"refusing to serve on {host} without HAPPYSAD_API_TOKEN: set a "
                            "token, or serve on 127.0.0.1 (the default)")


def reads_need_token(host: str) -> bool:
    """Beyond loopback every read needs the token too, unless HAPPYSAD_PUBLIC_READS opts out
    (said in the log: thumbnails are people's photos, and results name server paths)."""
    if is_loopback(host):
        return False
    if get_settings().public_reads:
        logger.warning("HAPPYSAD_PUBLIC_READS is set: anyone who reaches %s can read every "
                       "job, thumbnail and result without the token", host)
        return False
    return True


def serve(host: str, port: int) -> None:
    import uvicorn

    from happysad.web.app import create_app

    check_address(host)
    settings = get_settings()
    uvicorn.run(create_app(reads_need_token(host)), host=host, port=port,
                log_level=settings.log_level.lower(), proxy_headers=False, server_header=False)
