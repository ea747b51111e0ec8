"""drop ix_usage_event_org_day: no query reads it, and it cost a third of bulk-insert time

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 19:45:00

Every figure for a range is read from the daily rollups, so the raw event table needs
only its primary key, the (partner_id, event_id) uniqueness that makes ingestion
exactly-once, and (partner_id, received_at) for the data-freshness lookup. The
(organization_id, local_date) B-tree was never used by a query plan (checked with
EXPLAIN QUERY PLAN / EXPLAIN on SQLite and PostgreSQL) but was updated on every insert
(about 35 % of the insert CPU and 17 % of the table's disk on SQLite).
"""
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('usage_event', schema=None) as batch_op:
        batch_op.drop_index('ix_usage_event_org_day')


def downgrade():
    with op.batch_alter_table('usage_event', schema=None) as batch_op:
        batch_op.create_index('ix_usage_event_org_day', ['organization_id', 'local_date'],
                              unique=False)
