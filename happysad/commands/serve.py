"""`happysad serve`: the web app and the HTTP API."""

from typing import Annotated

import typer


def serve(host: Annotated[str, typer.Option(help="Address to listen on; beyond 127.0.0.1 needs HAPPYSAD_API_TOKEN.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000) -> None:
    """Serve the web app and the HTTP API (OpenAPI at /docs)."""
    from happysad.web.server import serve as run_server

    run_server(host, port)
