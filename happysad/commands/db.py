"""`happysad db`: the database schema."""

import typer

from happysad import output

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema (also done automatically on first use)."""
    from db.session import current_revision, get_engine
    from db.settings import get_settings, mask_url

    engine = get_engine()
    output.say(f"database {mask_url(get_settings().effective_database_url)} at "
                         f"revision {current_revision(engine)}")
