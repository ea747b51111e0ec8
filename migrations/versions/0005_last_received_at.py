"""partner_data_version.last_received_at replaces the (partner_id, received_at) index

The only reader of that index was the newest-receipt look-up behind "data as of"; keeping
the value beside the data version (written in the same statement as the version bump)
saves an index update on every stored event.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 22:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('partner_data_version') as batch:
        batch.add_column(sa.Column('last_received_at', sa.DateTime(), nullable=True))
    op.execute(
        "INSERT INTO partner_data_version (partner_id, version, last_received_at) "
        "SELECT partner_id, 1, max(received_at) FROM usage_event GROUP BY partner_id "
        "ON CONFLICT (partner_id) DO UPDATE SET "
        "version = partner_data_version.version + 1, "
        "last_received_at = excluded.last_received_at"
    )
    with op.batch_alter_table('usage_event') as batch:
        batch.drop_index('ix_usage_event_partner_received')


def downgrade():
    with op.batch_alter_table('usage_event') as batch:
        batch.create_index('ix_usage_event_partner_received', ['partner_id', 'received_at'])
    with op.batch_alter_table('partner_data_version') as batch:
        batch.drop_column('last_received_at')
