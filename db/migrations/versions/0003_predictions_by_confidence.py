"""predictions by confidence: the web app's "most uncertain first" pages by keyset

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_predictions_job_confidence_id', 'predictions',
                    ['job_id', 'confidence', 'id'])


def downgrade() -> None:
    op.drop_index('ix_predictions_job_confidence_id', table_name='predictions')
