"""batch outbox: URIs recorded before sending, a job's status reason, batch start times

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('listed_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('job_batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('uris', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sends', sa.Integer(), server_default='0', nullable=False))
        batch_op.alter_column('worker_host', existing_type=sa.String(length=255), nullable=True)
        batch_op.alter_column('finished_at', existing_type=sa.DateTime(timezone=True),
                              nullable=True)
    with op.batch_alter_table('batch_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('started_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('batch_attempts', schema=None) as batch_op:
        batch_op.drop_column('started_at')
    op.execute("DELETE FROM job_batches WHERE finished_at IS NULL")
    with op.batch_alter_table('job_batches', schema=None) as batch_op:
        batch_op.alter_column('finished_at', existing_type=sa.DateTime(timezone=True),
                              nullable=False)
        batch_op.alter_column('worker_host', existing_type=sa.String(length=255), nullable=False)
        batch_op.drop_column('sends')
        batch_op.drop_column('sent_at')
        batch_op.drop_column('uris')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('listed_at')
        batch_op.drop_column('status_reason')
