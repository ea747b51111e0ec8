"""usage_event without foreign keys: ingestion checks organizations itself

Every event's organization is checked against the partner's own organizations before it
is inserted, and partners and organizations are never deleted (an organization is
canceled), so the per-row foreign-key checks only repeated that check; on PostgreSQL
they were half of the insert cost. `flask rollups verify` reports any event whose
organization is not its partner's.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 23:05:00
"""
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('usage_event') as batch:
        batch.drop_constraint('fk_usage_event_organization_id_organization', type_='foreignkey')
        batch.drop_constraint('fk_usage_event_partner_id_partner', type_='foreignkey')


def downgrade():
    with op.batch_alter_table('usage_event') as batch:
        batch.create_foreign_key('fk_usage_event_partner_id_partner', 'partner',
                                 ['partner_id'], ['id'])
        batch.create_foreign_key('fk_usage_event_organization_id_organization',
                                 'organization', ['organization_id'], ['id'])
