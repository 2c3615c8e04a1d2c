"""PostgreSQL's advisory locks, for db.locks (the one lock helper). They belong to the
connection's session, not to a transaction, so these take a connection, not an ORM session."""

from sqlalchemy import Connection, text


def take_advisory_lock(connection: Connection, key: int, wait: bool) -> bool:
    """With `wait`, block until the lock is ours (True); without, whether it could be taken."""
    function = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
    held = connection.execute(text(f"SELECT {function}(:key)"), {"key": key}).scalar()
    return True if wait else bool(held)


def release_advisory_lock(connection: Connection, key: int) -> None:
    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
