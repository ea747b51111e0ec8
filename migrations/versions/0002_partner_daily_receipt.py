"""partner_daily_receipt: usage by local event day and local day received (late data)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:00:00

The table is filled from the events already stored, each counted on the calendar day
(in its partner's timezone) on which it was received.
"""
from collections import defaultdict
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('partner_daily_receipt',
    sa.Column('partner_id', sa.String(length=36), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('received_day', sa.Date(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.BigInteger(), nullable=False),
    sa.Column('events', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partner.id'], name=op.f('fk_partner_daily_receipt_partner_id_partner')),
    sa.PrimaryKeyConstraint('partner_id', 'day', 'received_day', 'type', name=op.f('pk_partner_daily_receipt'))
    )
    _backfill()


def _backfill():
    """Count the events already stored by (local day, local day received, type)."""
    bind = op.get_bind()
    partner = sa.table('partner', sa.column('id', sa.String), sa.column('timezone', sa.String))
    event = sa.table(
        'usage_event',
        sa.column('partner_id', sa.String), sa.column('local_date', sa.Date),
        sa.column('type', sa.String), sa.column('received_at', sa.DateTime),
        sa.column('quantity', sa.BigInteger),
    )
    receipt = sa.table(
        'partner_daily_receipt',
        sa.column('partner_id', sa.String), sa.column('day', sa.Date),
        sa.column('received_day', sa.Date), sa.column('type', sa.String),
        sa.column('quantity', sa.BigInteger), sa.column('events', sa.BigInteger),
    )
    for partner_id, tz_name in bind.execute(sa.select(partner.c.id, partner.c.timezone)).all():
        tz = ZoneInfo(tz_name or 'UTC')
        counts = defaultdict(lambda: [0, 0])
        rows = bind.execute(
            sa.select(event.c.local_date, event.c.type, event.c.received_at,
                      sa.func.sum(event.c.quantity), sa.func.count())
            .where(event.c.partner_id == partner_id)
            .group_by(event.c.local_date, event.c.type, event.c.received_at)
        )
        for day, etype, received_at, quantity, events in rows:
            if isinstance(received_at, str):
                received_at = datetime.fromisoformat(received_at)
            if isinstance(day, str):
                day = date.fromisoformat(day[:10])
            received_day = received_at.replace(tzinfo=UTC).astimezone(tz).date()
            key = (day, received_day, etype)
            counts[key][0] += int(quantity or 0)
            counts[key][1] += int(events or 0)
        if counts:
            bind.execute(receipt.insert(), [
                {'partner_id': partner_id, 'day': d, 'received_day': r, 'type': t,
                 'quantity': q, 'events': n}
                for (d, r, t), (q, n) in sorted(counts.items())
            ])


def downgrade():
    op.drop_table('partner_daily_receipt')
