"""reviews: a person's verdict beside each prediction, with its history

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'reviews',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('prediction_id', sa.Integer(), sa.ForeignKey('predictions.id'), nullable=False),
        sa.Column('job_id', sa.Integer(), sa.ForeignKey('jobs.id'), nullable=False),
        sa.Column('model_label', sa.String(length=255), nullable=False),
        sa.Column('reviewed_label', sa.String(length=255), nullable=False),
        sa.Column('reviewer', sa.String(length=255), nullable=False),
        sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_reviews_one_current', 'reviews', ['prediction_id'], unique=True,
                    sqlite_where=sa.text('superseded_at IS NULL'),
                    postgresql_where=sa.text('superseded_at IS NULL'))
    op.create_index('ix_reviews_job_id', 'reviews', ['job_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_reviews_job_id', table_name='reviews')
    op.drop_index('ix_reviews_one_current', table_name='reviews')
    op.drop_table('reviews')
