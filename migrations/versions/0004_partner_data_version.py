"""partner_data_version: the counter that invalidates the closed-period cache

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 20:05:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('partner_data_version',
    sa.Column('partner_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partner.id'], name=op.f('fk_partner_data_version_partner_id_partner')),
    sa.PrimaryKeyConstraint('partner_id', name=op.f('pk_partner_data_version'))
    )


def downgrade():
    op.drop_table('partner_data_version')
