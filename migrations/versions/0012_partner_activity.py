"""partner_activity, partner_bucket_usage and each organization's latest status: the
uncached summary without a look-up per organization

"Organizations with activity" over a range probed org_daily_usage once per organization
and "active at the end of endDate" read each organization's status history: 1,000 of
each for a partner with 1,000 organizations. partner_activity keeps, per partner and day,
calendar week and month, a bitmap of the organizations with any event (organization.seq
numbers them within their partner, 63 to a row); organization.latest_status and
latest_status_at keep the newest entry of the status history, so an end after it needs
no look-up. partner_bucket_usage sums partner_daily_usage by week and month, so a year's
totals read 12 rows per type, not 365. Filled here from org_daily_usage,
partner_daily_usage and organization_status_change.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 10:00:00
"""
from collections import defaultdict
from datetime import date, timedelta

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

BITS = 63  # models.ACTIVITY_BITS
# The start of the week (Monday) and of the month holding a day, per dialect (as in 0007).
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

organization = sa.table(
    'organization',
    sa.column('id', sa.String),
    sa.column('partner_id', sa.String),
    sa.column('created_at', sa.DateTime),
    sa.column('seq', sa.Integer),
    sa.column('latest_status', sa.String),
    sa.column('latest_status_at', sa.DateTime),
)
status_change = sa.table(
    'organization_status_change',
    sa.column('id', sa.Integer),
    sa.column('organization_id', sa.String),
    sa.column('status', sa.String),
    sa.column('changed_at', sa.DateTime),
)
org_daily_usage = sa.table(
    'org_daily_usage',
    sa.column('organization_id', sa.String),
    sa.column('partner_id', sa.String),
    sa.column('day', sa.Date),
)
partner_activity = sa.table(
    'partner_activity',
    sa.column('partner_id', sa.String),
    sa.column('grain', sa.String),
    sa.column('start', sa.Date),
    sa.column('chunk', sa.Integer),
    sa.column('organizations', sa.BigInteger),
)


def _starts(day: date) -> tuple[tuple[str, date], ...]:
    """The day, its week (from Monday) and its month: the rows a day's bit is set in."""
    return (
        ('day', day),
        ('week', day - timedelta(days=day.weekday())),
        ('month', day.replace(day=1)),
    )


def _fill_organizations(bind) -> None:
    """Number each partner's organizations by creation; copy each newest status entry."""
    counters: dict[str, int] = defaultdict(int)
    rows = bind.execute(
        sa.select(organization.c.id, organization.c.partner_id).order_by(
            organization.c.partner_id, organization.c.created_at, organization.c.id
        )
    ).all()
    latest = {}
    for org_id, status, changed_at in bind.execute(
        sa.select(status_change.c.organization_id, status_change.c.status,
                  status_change.c.changed_at).order_by(
            status_change.c.organization_id, status_change.c.changed_at, status_change.c.id
        )
    ):
        latest[org_id] = (status, changed_at)
    for org_id, partner_id in rows:
        values = {'seq': counters[partner_id]}
        counters[partner_id] += 1
        if org_id in latest:
            values['latest_status'], values['latest_status_at'] = latest[org_id]
        bind.execute(organization.update().where(organization.c.id == org_id).values(**values))


def _fill_activity(bind) -> None:
    """Set the bits of every (organization, day) that org_daily_usage holds."""
    bits: dict[tuple[str, str, date, int], int] = defaultdict(int)
    for partner_id, seq, day in bind.execute(
        sa.select(org_daily_usage.c.partner_id, organization.c.seq, org_daily_usage.c.day)
        .distinct()
        .select_from(
            org_daily_usage.join(organization,
                                 organization.c.id == org_daily_usage.c.organization_id)
        )
    ):
        chunk, bit = divmod(seq, BITS)
        for grain, start in _starts(day):
            bits[(partner_id, grain, start, chunk)] |= 1 << bit
    rows = [
        {'partner_id': p, 'grain': g, 'start': s, 'chunk': c, 'organizations': b}
        for (p, g, s, c), b in sorted(bits.items())
    ]
    for i in range(0, len(rows), 10_000):
        bind.execute(partner_activity.insert(), rows[i:i + 10_000])


def upgrade():
    # Added NOT NULL with a placeholder default, then filled: on SQLite, ADD COLUMN needs
    # no copy of the table (a copy would break the foreign keys of the rows referring to
    # it). PostgreSQL drops the placeholders; SQLite keeps them (the app sets every value).
    with op.batch_alter_table('organization') as batch:
        batch.add_column(sa.Column('latest_status', sa.String(length=20), nullable=False,
                                   server_default='active'))
        batch.add_column(sa.Column('latest_status_at', sa.DateTime(), nullable=False,
                                   server_default='1970-01-01 00:00:00'))
        batch.add_column(sa.Column('seq', sa.Integer(), nullable=False, server_default='0'))
    bind = op.get_bind()
    _fill_organizations(bind)
    op.create_index('uq_organization_partner_id_seq', 'organization', ['partner_id', 'seq'],
                    unique=True)
    op.create_index('ix_organization_partner_latest', 'organization',
                    ['partner_id', 'latest_status_at', 'latest_status'])
    if bind.dialect.name == 'postgresql':
        for column in ('latest_status', 'latest_status_at', 'seq'):
            op.alter_column('organization', column, server_default=None)
    # Keyed by partner first, WITHOUT ROWID on SQLite: every read is a range of the key.
    op.create_table(
        'partner_activity',
        sa.Column('partner_id', sa.String(length=36), nullable=False),
        sa.Column('grain', sa.String(length=8), nullable=False),
        sa.Column('start', sa.Date(), nullable=False),
        sa.Column('chunk', sa.Integer(), nullable=False),
        sa.Column('organizations', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('partner_id', 'grain', 'start', 'chunk',
                                name=op.f('pk_partner_activity')),
        sqlite_with_rowid=False,
    )
    _fill_activity(bind)
    op.create_table(
        'partner_bucket_usage',
        sa.Column('partner_id', sa.String(length=36), nullable=False),
        sa.Column('grain', sa.String(length=8), nullable=False),
        sa.Column('bucket_start', sa.Date(), nullable=False),
        sa.Column('type', sa.String(length=64), nullable=False),
        sa.Column('quantity', sa.BigInteger(), nullable=False),
        sa.Column('events', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('partner_id', 'grain', 'bucket_start', 'type',
                                name=op.f('pk_partner_bucket_usage')),
        sqlite_with_rowid=False,
    )
    for grain, bucket in _BUCKET_SQL[bind.dialect.name].items():
        op.execute(
            "INSERT INTO partner_bucket_usage (partner_id, grain, bucket_start, type, "
            f"quantity, events) SELECT partner_id, '{grain}', {bucket}, type, sum(quantity), "
            f"sum(events) FROM partner_daily_usage GROUP BY partner_id, {bucket}, type"
        )
    if bind.dialect.name == 'postgresql':
        op.execute("ANALYZE partner_activity")
        op.execute("ANALYZE partner_bucket_usage")


def downgrade():
    op.drop_table('partner_bucket_usage')
    op.drop_table('partner_activity')
    op.drop_index('ix_organization_partner_latest', table_name='organization')
    op.drop_index('uq_organization_partner_id_seq', table_name='organization')
    with op.batch_alter_table('organization') as batch:
        batch.drop_column('seq')
        batch.drop_column('latest_status_at')
        batch.drop_column('latest_status')
