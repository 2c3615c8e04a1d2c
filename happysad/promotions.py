"""Changing the production version by hand, for both faces (`happysad models promote`, the
API and the models page): the promotion answered is the one this call wrote.

The API used to promote in one transaction and then read "the newest promotion" in a second:
any promotion committed between the two (another caller, a retrain's automatic one) was
answered as its own. Here the row is written, read and turned into a record in one session.
"""

from sqlalchemy.orm import Session

from db import queries
from db.tables import Promotion
from happysad.records import promotion_record


def promote(session: Session, version: int, reason: str) -> dict:
    """Make `version` production; its promotion's record. Going back to an older version than
    the one it replaces is a rollback; the comparison is with the production version read
    under set_production's lock, so two promoters cannot both misjudge it."""
    promotion: Promotion = queries.set_production(session, version, "manual", reason)
    if promotion.previous_version is not None and version < promotion.previous_version:
        promotion.kind = "rollback"
        session.flush()
    return promotion_record(promotion)


def roll_back(session: Session, reason: str) -> dict:
    """Make the version that was production before the latest change production again."""
    return promotion_record(queries.rollback_production(session, reason))
