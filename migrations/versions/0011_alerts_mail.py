"""alert rules, their states and history, the mail outbox, members' e-mail choices and
the monthly report's sendings

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "alert_rule",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partner.id"], name=op.f("fk_alert_rule_partner_id_partner")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rule")),
    )
    op.create_index("ix_alert_rule_partner", "alert_rule", ["partner_id", "kind"])
    op.create_table(
        "alert_state",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("rule_id", sa.String(length=36), nullable=False),
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("subject", sa.String(length=36), nullable=False),
        sa.Column("period_key", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("fired_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["alert_rule.id"], name=op.f("fk_alert_state_rule_id_alert_rule")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partner.id"], name=op.f("fk_alert_state_partner_id_partner")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_state")),
        sa.UniqueConstraint(
            "rule_id",
            "subject",
            "period_key",
            name=op.f("uq_alert_state_rule_id_subject_period_key"),
        ),
    )
    op.create_table(
        "alert_event",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("rule_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("subject", sa.String(length=36), nullable=False),
        sa.Column("subject_label", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partner.id"], name=op.f("fk_alert_event_partner_id_partner")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_event")),
    )
    op.create_index(
        "ix_alert_event_partner_time", "alert_event", ["partner_id", "occurred_at", "id"]
    )
    op.create_table(
        "mail_message",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("failed_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partner.id"], name=op.f("fk_mail_message_partner_id_partner")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_message")),
    )
    op.create_index("ix_mail_message_due", "mail_message", ["next_attempt_at"])
    op.create_table(
        "mail_preference",
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("alert_kinds", sa.JSON(), nullable=False),
        sa.Column("monthly_report", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_mail_preference_user_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partner.id"], name=op.f("fk_mail_preference_partner_id_partner")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_mail_preference")),
    )
    op.create_index(
        op.f("ix_mail_preference_partner_id"), "mail_preference", ["partner_id"]
    )
    op.create_table(
        "report_mailing",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("headline", sa.JSON(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partner.id"], name=op.f("fk_report_mailing_partner_id_partner")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_mailing")),
        sa.UniqueConstraint(
            "partner_id",
            "month",
            "revision",
            name=op.f("uq_report_mailing_partner_id_month_revision"),
        ),
    )


def downgrade():
    op.drop_table("report_mailing")
    op.drop_index(op.f("ix_mail_preference_partner_id"), table_name="mail_preference")
    op.drop_table("mail_preference")
    op.drop_index("ix_mail_message_due", table_name="mail_message")
    op.drop_table("mail_message")
    op.drop_index("ix_alert_event_partner_time", table_name="alert_event")
    op.drop_table("alert_event")
    op.drop_table("alert_state")
    op.drop_index("ix_alert_rule_partner", table_name="alert_rule")
    op.drop_table("alert_rule")
