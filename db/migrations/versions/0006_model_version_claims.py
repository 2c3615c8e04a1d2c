"""model version claims: a version number taken in SQL before any file is written

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('model_version_claims',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('version')
    )
    # Versions registered before claims existed are claimed already.
    op.execute("INSERT INTO model_version_claims (version, claimed_at, claimed_by) "
               "SELECT version, created_at, 'before claims' FROM model_versions")


def downgrade() -> None:
    op.drop_table('model_version_claims')
