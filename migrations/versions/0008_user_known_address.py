"""user_known_address: the addresses each user signed in from (HMAC digests)

The per-account sign-in throttle lets the right password through from an address that
already signed in to that account (app/signin.py), so an attacker's wrong guesses cannot
lock the owner out.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 21:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'user_known_address',
        sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.Column('address_digest', sa.String(length=64), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE',
                                name=op.f('fk_user_known_address_user_id_user')),
        sa.PrimaryKeyConstraint('user_id', 'address_digest',
                                name=op.f('pk_user_known_address')),
    )


def downgrade():
    op.drop_table('user_known_address')
