"""prediction familiarity: how like the training images each image is (null for models
without the output), and the review queue's "most unfamiliar first" by keyset

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('predictions', sa.Column('familiarity', sa.Float(), nullable=True))
    op.create_index('ix_predictions_job_familiarity_id', 'predictions',
                    ['job_id', 'familiarity', 'id'])


def downgrade() -> None:
    op.drop_index('ix_predictions_job_familiarity_id', table_name='predictions')
    with op.batch_alter_table('predictions') as batch:  # SQLite cannot drop a column in place
        batch.drop_column('familiarity')
