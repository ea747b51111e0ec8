"""org_bucket_usage: each organization's usage by calendar week and month

A year's per-organization figures (the organizations table, the top-organizations chart)
and the weekly counts of organizations with activity read one rollup row per
organization, type and day (over a million rows at 1,000 organizations); whole weeks and
months of a range now come from this table instead (about 12 monthly rows per
organization for a year, with identifications beside the totals of every type).
Filled here from org_daily_usage.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 01:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# The start of the week (Monday) and of the month holding a day, per dialect.
_BUCKET_SQL = {
    'sqlite': {
        'week': "date(day, '-' || ((CAST(strftime('%w', day) AS INTEGER) + 6) % 7) || ' days')",
        'month': "strftime('%Y-%m-01', day)",
    },
    'postgresql': {
        'week': "CAST(date_trunc('week', day) AS date)",
        'month': "CAST(date_trunc('month', day) AS date)",
    },
}


def upgrade():
    # Keyed by partner and bucket first, WITHOUT ROWID on SQLite: a batch of events
    # touches a few contiguous runs of the key, and every read is a range of it.
    op.create_table(
        'org_bucket_usage',
        sa.Column('partner_id', sa.String(length=36), nullable=False),
        sa.Column('grain', sa.String(length=8), nullable=False),
        sa.Column('bucket_start', sa.Date(), nullable=False),
        sa.Column('organization_id', sa.String(length=36), nullable=False),
        sa.Column('identifications', sa.BigInteger(), nullable=False),
        sa.Column('quantity', sa.BigInteger(), nullable=False),
        sa.Column('events', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('partner_id', 'grain', 'bucket_start', 'organization_id',
                                name=op.f('pk_org_bucket_usage')),
        sqlite_with_rowid=False,
    )
    dialect = op.get_bind().dialect.name
    for grain, bucket in _BUCKET_SQL[dialect].items():
        op.execute(
            "INSERT INTO org_bucket_usage (partner_id, grain, bucket_start, organization_id, "
            "identifications, quantity, events) "
            f"SELECT partner_id, '{grain}', {bucket}, organization_id, "
            "sum(CASE WHEN type = 'identification' THEN quantity ELSE 0 END), "
            "sum(quantity), sum(events) FROM org_daily_usage "
            f"GROUP BY partner_id, {bucket}, organization_id"
        )
    if dialect == 'postgresql':
        # Plan the first reads with real statistics, not those of an empty table.
        op.execute("ANALYZE org_bucket_usage")


def downgrade():
    op.drop_table('org_bucket_usage')
